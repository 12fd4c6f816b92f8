"""One running node: the LMDB store, the node driver, the peer transport, the bank and
the gRPC services, wired together; `serve` runs it until a signal."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import signal

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from ledger.bank.service import Bank
from ledger.bank.state_machine import LedgerStateMachine
from ledger.node.driver import NodeDriver, NodeFailed
from ledger.node.dropped import DroppedMessages
from ledger.node.transport import CHANNEL_OPTIONS, PeerTransport
from ledger.paxos import Envelope, PaxosConfig
from ledger.server.admin_servicer import AdminServicer
from ledger.server.config import IdentityMismatch, ServeConfig, check_identity, open_store
from ledger.server.forwarder import Forwarder
from ledger.server.front_door import CallGate, add_service
from ledger.server.ledger_servicer import LedgerServicer
from ledger.server.limits import ServerLimits
from ledger.server.replica_servicer import ReplicaServicer
from ledger.storage.base import Store
from ledger.v1 import ledger_pb2, replica_pb2

log = logging.getLogger(__name__)

LEDGER_SERVICE = ledger_pb2.DESCRIPTOR.services_by_name["Ledger"]
REPLICA_SERVICE = replica_pb2.DESCRIPTOR.services_by_name["Replica"]
ADMIN_SERVICE = replica_pb2.DESCRIPTOR.services_by_name["Admin"]


class NodeServer:
    """One running node. `start`, then `wait` until a signal, then `stop`."""

    def __init__(self, config: ServeConfig, store: Store,
                 limits: ServerLimits | None = None) -> None:
        self.config = config
        self.store = store
        self.limits = limits or ServerLimits()
        index = config.node_index
        self.dropped = DroppedMessages()
        self.transport = PeerTransport(config.cluster, index, self._on_answers, self.dropped)
        self.machine = LedgerStateMachine(store)
        self.driver = NodeDriver(
            index,
            PaxosConfig(cluster_size=config.cluster.size),
            store,
            self.transport.send,
            random.Random(),
            self.machine,
        )
        self.driver.counters.extra = lambda: {
            "peer_calls": self.transport.calls_made,
            "peer_calls_failed": self.transport.calls_failed,
            "forwarded_batches": self.bank.forwarded_batches,
            "peer_messages_dropped": self.dropped.count,
            "client_calls_refused_busy": self.front_door.refused,
        }
        self.forwarder = Forwarder(config.cluster)
        self.bank = Bank(self.driver, self.machine, forward=self.forwarder)
        self.server = grpc.aio.server(
            options=[*CHANNEL_OPTIONS,
                     ("grpc.max_receive_message_length", self.limits.max_message_bytes)],
            maximum_concurrent_rpcs=self.limits.max_concurrent_rpcs)
        limits = self.limits
        add_service(ReplicaServicer(config.cluster, index, self.driver, self.dropped),
                    self.server, REPLICA_SERVICE, replica_pb2, limits.max_message_bytes)
        add_service(AdminServicer(config.node_id, config.cluster, store, self.driver,
                                  self._balance),
                    self.server, ADMIN_SERVICE, replica_pb2, limits.max_client_request_bytes)
        self.front_door = CallGate(limits.max_client_calls_in_flight)
        add_service(LedgerServicer(self.bank, limits.max_deadline_s), self.server,
                    LEDGER_SERVICE, ledger_pb2, limits.max_client_request_bytes,
                    self.front_door)
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
        if self._driver_task is None:
            raise RuntimeError("wait() before start()")
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
        failed = False
        if self._driver_task is not None:
            if not self._driver_task.done():
                with contextlib.suppress(NodeFailed):
                    await self._driver_task
            failed = (not self._driver_task.cancelled()
                      and self._driver_task.exception() is not None)
        await self.transport.stop()
        if failed:
            # Memory may hold writes the disk does not: commit nothing more. A restart
            # reads the data directory, which holds everything acknowledged.
            self.store.abandon()
            log.critical("node %s stopped on a failure; nothing staged was committed",
                         self.config.node_id)
            return
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
