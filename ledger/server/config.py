"""What a server is told on its command line, and the data directory it owns."""

from __future__ import annotations

import pathlib
from dataclasses import dataclass

from ledger.bank.state_machine import LedgerStateMachine
from ledger.node.cluster import ClusterConfig, parse_address
from ledger.storage.base import NodeIdentity, Store


class IdentityMismatch(Exception):
    """The data directory belongs to another node or another cluster."""


@dataclass(frozen=True, slots=True)
class ServeConfig:
    node_id: str
    data_dir: pathlib.Path
    cluster: ClusterConfig
    listen: str | None = None  # bind address; defaults to this node's cluster address
    map_size_mb: int = 1024

    @property
    def node_index(self) -> int:
        return self.cluster.index_of(self.node_id)

    @property
    def bind_address(self) -> str:
        if self.listen is not None:
            host, port = parse_address(self.listen)
            return f"{host}:{port}"
        return self.cluster.members[self.node_index].address


def check_identity(store: Store, node_id: str, cluster: ClusterConfig) -> None:
    """Record who owns a new data directory; refuse a restart under another identity."""
    wanted = NodeIdentity(node_id, cluster.as_pairs())
    recorded = store.identity()
    if recorded is None:
        store.set_identity(wanted)
        return
    if recorded != wanted:
        recorded_cluster = ",".join(f"{i}={a}" for i, a in recorded.cluster)
        raise IdentityMismatch(
            f"this data directory belongs to node {recorded.node_id!r} of cluster "
            f"{recorded_cluster}; refusing to start it as node {node_id!r} of cluster "
            f"{cluster.canonical()}. Use that node's own data directory, or a new one."
        )


def open_store(config: ServeConfig) -> Store:
    """The node's durable store: LMDB behind a group-commit writer thread."""
    from ledger.storage.group_commit import GroupCommitStore
    from ledger.storage.lmdb import LmdbStore

    return GroupCommitStore(LmdbStore(config.data_dir, app_tables=LedgerStateMachine.TABLES,
                                      map_size_bytes=config.map_size_mb << 20))
