"""What a server is told on its command line, and the data directory it owns."""

from __future__ import annotations

import dataclasses
import logging
import pathlib
from dataclasses import dataclass

from ledger.bank.state_machine import LedgerStateMachine
from ledger.node.cluster import ClusterConfig, parse_address
from ledger.node.peer_book import recover_hint
from ledger.security.tls import Security, TlsMaterial
from ledger.server.admission import RecoveryRequired
from ledger.storage.base import Incarnation, NodeIdentity, Store

log = logging.getLogger(__name__)


class IdentityMismatch(Exception):
    """The data directory belongs to another node or another cluster."""


@dataclass(frozen=True, slots=True)
class ServeConfig:
    node_id: str
    data_dir: pathlib.Path
    cluster: ClusterConfig
    listen: str | None = None  # bind address; defaults to this node's cluster address
    map_size_mb: int = 1024
    #: This node's member certificate and the CA (None: plaintext, and every caller is an
    #: anonymous principal with every role: `ledger serve --insecure`, development only).
    tls: TlsMaterial | None = None
    revocation_list: pathlib.Path | None = None  # names and serials refused (TLS only)
    health_listen: str | None = None  # a plaintext listener answering health checks only
    metrics_listen: str | None = None  # plaintext HTTP serving Prometheus' /metrics

    @property
    def security(self) -> Security:
        """How this node dials its peers: with its member certificate, or in plaintext."""
        return Security(self.tls)

    @property
    def node_index(self) -> int:
        return self.cluster.index_of(self.node_id)

    @property
    def bind_address(self) -> str:
        if self.listen is not None:
            host, port = parse_address(self.listen)
            return f"{host}:{port}"
        return self.cluster.members[self.node_index].address


def check_identity(store: Store, node_id: str, cluster: ClusterConfig) -> NodeIdentity:
    """Record who owns a new data directory; refuse one of another node or set of members,
    and one that must go through `ledger recover` first. Returns the identity to run as.

    The identity is the node id and the member ids: a member moved to another address
    (with --cluster changed on every node) keeps its directory, and the addresses
    recorded are updated.
    """
    recorded = store.identity()
    if recorded is None:
        identity = NodeIdentity(node_id, cluster.as_pairs(), Incarnation.new(0),
                                join_pending=True)
        store.set_identity(identity)
        return identity
    wanted_ids = tuple(m.node_id for m in cluster.members)
    if recorded.node_id != node_id or recorded.member_ids != wanted_ids:
        recorded_cluster = ",".join(f"{i}={a}" for i, a in recorded.cluster)
        raise IdentityMismatch(
            f"this data directory belongs to node {recorded.node_id!r} of a cluster with "
            f"members {recorded_cluster}; refusing to start it as node {node_id!r} of "
            f"{cluster.canonical()}. Give each node its own data directory; a node whose "
            f"directory was lost comes back with `ledger recover` (see README)."
        )
    if recorded.incarnation is None:
        raise RecoveryRequired(f"this data directory has no incarnation. {recover_hint(node_id)}")
    if recorded.recovery_required is not None:
        raise RecoveryRequired(f"{recorded.recovery_required}. {recover_hint(node_id)}")
    if recorded.cluster != cluster.as_pairs():
        log.warning("member addresses changed from %s to %s",
                    ",".join(f"{i}={a}" for i, a in recorded.cluster), cluster.canonical())
        recorded = dataclasses.replace(recorded, cluster=cluster.as_pairs())
        store.set_identity(recorded)
    return recorded


def open_store(config: ServeConfig) -> Store:
    """The node's durable store: LMDB behind a group-commit writer thread."""
    from ledger.storage.group_commit import GroupCommitStore
    from ledger.storage.lmdb import LmdbStore

    return GroupCommitStore(LmdbStore(config.data_dir, app_tables=LedgerStateMachine.TABLES,
                                      map_size_bytes=config.map_size_mb << 20))
