"""A storage server process: LMDB store, node driver, peer transport, gRPC services.

The server wires the layers together (the bank over the driver over the core and
the store); it is the one module of the node package that knows the bank exists.
"""

from __future__ import annotations

import asyncio
import logging
import pathlib
import random
import signal
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from ledger.api.forwarder import Forwarder
from ledger.api.servicer import LedgerServicer
from ledger.bank.service import Bank
from ledger.bank.state_machine import LedgerStateMachine
from ledger.node.cluster import ClusterConfig, parse_address
from ledger.node.driver import NodeDriver
from ledger.node.servicers import AdminServicer, ReplicaServicer
from ledger.node.transport import CHANNEL_OPTIONS, PeerTransport
from ledger.paxos import Envelope, PaxosConfig
from ledger.storage.base import NodeIdentity, Store
from ledger.v1 import ledger_pb2_grpc
from ledger.v1 import replica_pb2_grpc as pb_grpc

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
    from ledger.storage.group_commit import GroupCommitStore
    from ledger.storage.lmdb_store import LmdbStore

    return GroupCommitStore(LmdbStore(config.data_dir, app_tables=LedgerStateMachine.TABLES,
                                      map_size_bytes=config.map_size_mb << 20))


class NodeServer:
    """One running node. `start`, then `wait` until a signal, then `stop`."""

    def __init__(self, config: ServeConfig, store: Store) -> None:
        self.config = config
        self.store = store
        index = config.node_index
        self.transport = PeerTransport(config.cluster, index, self._on_answers)
        self.machine = LedgerStateMachine(store)
        self.driver = NodeDriver(
            index,
            PaxosConfig(cluster_size=config.cluster.size),
            store,
            self.transport.send,
            random.Random(),
            self.machine,
        )
        self.driver.extra_counters = lambda: {
            "peer_calls": self.transport.calls_made,
            "peer_calls_failed": self.transport.calls_failed,
            "forwarded_batches": self.bank.forwarded_batches,
        }
        self.forwarder = Forwarder(config.cluster)
        self.bank = Bank(self.driver, self.machine, forward=self.forwarder)
        self.server = grpc.aio.server(options=CHANNEL_OPTIONS)
        pb_grpc.add_ReplicaServicer_to_server(
            ReplicaServicer(config.cluster, index, self.driver), self.server
        )
        pb_grpc.add_AdminServicer_to_server(
            AdminServicer(config.node_id, config.cluster, store, self.driver, self._balance),
            self.server,
        )
        ledger_pb2_grpc.add_LedgerServicer_to_server(LedgerServicer(self.bank), self.server)
        # The standard gRPC health service, for orchestrators' readiness probes.
        self.health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        self._driver_task: asyncio.Task[None] | None = None
        self._stopped = asyncio.Event()

    def _on_answers(self, envelopes: list[Envelope]) -> None:
        self.driver.receive(envelopes)

    def _balance(self, account: str) -> int | None:
        state = self.machine.account(account).state
        return state.balance if state.opened else None

    async def start(self) -> None:
        port = self.server.add_insecure_port(self.config.bind_address)
        if port == 0:
            raise OSError(f"cannot listen on {self.config.bind_address}")
        self.transport.start()
        self._driver_task = asyncio.create_task(self.driver.run())
        await self.server.start()
        for service in ("", "ledger.v1.Ledger"):
            await self.health.set(service, health_pb2.HealthCheckResponse.SERVING)
        log.info("node %s serving on %s (cluster %s)", self.config.node_id,
                 self.config.bind_address, self.config.cluster.canonical())

    async def wait(self) -> None:
        assert self._driver_task is not None
        stopped = asyncio.create_task(self._stopped.wait())
        done, _ = await asyncio.wait({self._driver_task, stopped},
                                     return_when=asyncio.FIRST_COMPLETED)
        if self._driver_task in done:
            self._driver_task.result()  # re-raise what ended the driver

    def request_stop(self) -> None:
        self._stopped.set()

    async def stop(self) -> None:
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace=1.0)
        await self.bank.close()
        await self.forwarder.close()
        self.driver.stop()
        if self._driver_task is not None and not self._driver_task.done():
            await self._driver_task
        await self.transport.stop()
        self.store.close()
        log.info("node %s stopped cleanly", self.config.node_id)


async def serve(config: ServeConfig) -> None:
    """Run a node until SIGTERM or SIGINT, then shut down cleanly."""
    store = open_store(config)
    try:
        check_identity(store, config.node_id, config.cluster)
    except IdentityMismatch:
        store.close()
        raise
    node = NodeServer(config, store)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, node.request_stop)
    await node.start()
    try:
        await node.wait()
    finally:
        await node.stop()
