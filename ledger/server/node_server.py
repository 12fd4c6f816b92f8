"""One running node: the LMDB store, the node driver, the peer transport, the bank and
the gRPC services, wired together; `serve` runs it until a signal."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import random
import signal
from collections.abc import Callable

import grpc
from grpc_health.v1 import health, health_pb2

from ledger.bank.service import Bank
from ledger.bank.state_machine import LedgerStateMachine
from ledger.node.counters import Histogram
from ledger.node.driver import NodeDriver, NodeFailed
from ledger.node.dropped import DroppedMessages
from ledger.node.peer_book import PeerBook
from ledger.node.transport import CHANNEL_OPTIONS, PeerTransport
from ledger.paxos import Envelope, PaxosConfig
from ledger.security.authn import Authenticator
from ledger.security.revocation import RevocationList
from ledger.server.admin_servicer import AdminServicer
from ledger.server.admission import RecoveryRequired, admit
from ledger.server.config import ServeConfig, check_identity, open_store
from ledger.server.forwarder import Forwarder
from ledger.server.front_door import CallGate, Guard, add_health, add_service
from ledger.server.ledger_servicer import LedgerServicer
from ledger.server.limits import ServerLimits
from ledger.server.metrics import bound_values, serve_metrics
from ledger.server.peer_copies import PeerCopies
from ledger.server.recover import recover
from ledger.server.reflection import add_reflection
from ledger.server.replica_servicer import ReplicaServicer
from ledger.storage.base import Incarnation, NodeIdentity, Store
from ledger.v1 import ledger_pb2, replica_pb2

log = logging.getLogger(__name__)

LEDGER_SERVICE = ledger_pb2.DESCRIPTOR.services_by_name["Ledger"]
REPLICA_SERVICE = replica_pb2.DESCRIPTOR.services_by_name["Replica"]
ADMIN_SERVICE = replica_pb2.DESCRIPTOR.services_by_name["Admin"]
LIVENESS_SERVICE = "liveness"
METRICS_COPY_INTERVAL_S = 1.0  # how stale a scrape's counters may be


class NodeServer:
    """One running node. `start`, then `wait` until a signal, then `stop`."""

    def __init__(self, config: ServeConfig, store: Store,
                 limits: ServerLimits | None = None) -> None:
        self.config = config
        self.store = store
        self.limits = limits or ServerLimits()
        index = config.node_index
        self.dropped = DroppedMessages()
        # A store without an identity (an in-memory one, in tests) runs as a member
        # the cluster already knows; `serve` records one in every data directory.
        self.identity = store.identity() or NodeIdentity(
            config.node_id, config.cluster.as_pairs(), Incarnation.new(0))
        assert self.identity.incarnation is not None  # check_identity refuses the rest
        self.book = PeerBook(store)
        # This process, among the lives of the directory (its peers check the directory's
        # commit count when it changes).
        self.boot = boot = random.getrandbits(63)
        self.admitted = asyncio.Event()
        self.transport = PeerTransport(config.cluster, index, self._on_answers, self.dropped,
                                       self.identity.incarnation, store.durable_seq,
                                       self.book, boot, config.security)
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
            "forward_messages": self.forwarder.messages_sent,
            "peer_messages_dropped": self.dropped.count,
            "client_calls_refused_busy": self.front_door.refused,
            "waiting_for_members": int(not self.admitted.is_set()),
            "marked_for_recovery": int(self.identity.recovery_required is not None),
            "calls_unauthenticated": self.guard.unauthenticated,
            "calls_denied": self.guard.denied,
            "held_entries": self.bank.held_entries(),
            **self.bank.writes_answered(),
            **self.transport.health(),
            **bound_values({**self.bank.memory_bounds(), "client_calls": (
                self.front_door.in_flight, self.front_door.limit)}),
        }
        self.peer_copies = PeerCopies(config.cluster, index, config.security)
        self.driver.fetch_chosen = self.peer_copies.fetch
        self.driver.needs_recovery = self._mark_for_recovery
        self.forwarder = Forwarder(config.cluster, config.security, config.node_id)
        self.bank = Bank(self.driver, self.machine, forward=self.forwarder)
        self.server = grpc.aio.server(
            options=[*CHANNEL_OPTIONS,
                     ("grpc.max_receive_message_length", self.limits.max_message_bytes)],
            maximum_concurrent_rpcs=self.limits.max_concurrent_rpcs)
        limits = self.limits
        self.revocations = (RevocationList(config.revocation_list)
                            if config.tls is not None and config.revocation_list else None)
        self.guard = Guard(Authenticator(config.tls is None, self.revocations))
        add_service(ReplicaServicer(config.cluster, index, self.driver, self.dropped, store,
                                    self.identity.incarnation, self.book, self.admitted,
                                    boot),
                    self.server, REPLICA_SERVICE, replica_pb2, limits.max_message_bytes,
                    self.guard)
        add_service(AdminServicer(config.node_id, config.cluster, store, self.driver,
                                  self._balance),
                    self.server, ADMIN_SERVICE, replica_pb2, limits.max_client_request_bytes,
                    self.guard)
        self.front_door = CallGate(limits.max_client_calls_in_flight)
        add_service(LedgerServicer(self.bank, limits.max_deadline_s,
                                   [m.address for m in config.cluster.members],
                                   self.front_door, config.node_id, self.guard.record),
                    self.server,
                    LEDGER_SERVICE, ledger_pb2, limits.max_client_request_bytes, self.guard,
                    self.front_door)
        # The standard gRPC health service, for orchestrators' probes: on the node's own
        # port (any certificate of the cluster), and on a plaintext port that answers
        # nothing else (Kubernetes' gRPC probes cannot present a certificate).
        self.health = health.aio.HealthServicer()
        add_health(self.health, self.server, self.guard)
        # Server reflection (`grpcurl HOST:PORT list`), for any certificate of the cluster.
        add_reflection(self.server, self.guard,
                       [service.full_name for service in (LEDGER_SERVICE, ADMIN_SERVICE,
                                                          REPLICA_SERVICE)]
                       + [health_pb2.DESCRIPTOR.services_by_name["Health"].full_name],
                       limits.max_client_request_bytes)
        self.health_server: grpc.aio.Server | None = None
        if config.health_listen is not None:
            self.health_server = grpc.aio.server(maximum_concurrent_rpcs=16)
            add_health(self.health, self.health_server, None)
        # Prometheus reads a copy of the counters, made on this loop once a second: the
        # scrape's thread never touches the node's own structures.
        self._counters_seen: dict[str, int] = {}
        self._histograms_seen: dict[str, Histogram] = {}
        self._metrics_copier: asyncio.Task[None] | None = None
        self._stop_metrics: Callable[[], None] | None = None
        self._driver_task: asyncio.Task[None] | None = None
        self._admission: asyncio.Task[None] | None = None
        self._stopped = asyncio.Event()
        self.recovery_requested = False  # a damaged record: stop, recover, serve again

    def _mark_for_recovery(self, reason: str) -> None:
        """A promise or vote record is damaged: the account is quarantined here, the node
        serves the rest, and its next start goes through `ledger recover` (the Kubernetes
        init container runs it; a plain `ledger serve` refuses, naming it)."""
        if self.identity.recovery_required is not None or self.store.identity() is None:
            return
        self.identity = dataclasses.replace(self.identity, recovery_required=(
            f"a record was found damaged while node {self.config.node_id} ran ({reason})"))
        self.store.set_identity(self.identity)
        log.error("node %s must go through `ledger recover` (it does so now when run by "
                  "`ledger serve`): %s", self.config.node_id, reason)
        self.recovery_requested = True
        self._stopped.set()

    def _on_answers(self, envelopes: list[Envelope]) -> None:
        self.driver.receive(envelopes)

    def _balance(self, account: str) -> int | None:
        state = self.machine.account(account).state
        return state.balance if state.opened else None

    async def start(self) -> None:
        """Listen (peers can ask who this node is at once), then take part in Paxos once
        the other members confirm its data directory is current (see `admission`)."""
        if self.config.tls is None:
            log.warning("node %s serves PLAINTEXT (--insecure): every caller is an anonymous "
                        "principal with every role; for local development only",
                        self.config.node_id)
            port = self.server.add_insecure_port(self.config.bind_address)
        else:
            port = self.server.add_secure_port(self.config.bind_address,
                                               self.config.tls.server_credentials())
        if port == 0:
            raise OSError(f"cannot listen on {self.config.bind_address}")
        await self.server.start()
        if self.health_server is not None:
            assert self.config.health_listen is not None
            if self.health_server.add_insecure_port(self.config.health_listen) == 0:
                raise OSError(f"cannot listen on {self.config.health_listen} (--health-listen)")
            await self.health_server.start()
        if self.config.metrics_listen is not None:
            self._copy_metrics()
            self._metrics_copier = asyncio.create_task(self._copy_counters())
            try:
                metrics = serve_metrics(
                    self.config.metrics_listen, lambda: self._counters_seen,
                    lambda: self._histograms_seen,
                    [member.node_id for member in self.config.cluster.members])
            except OSError as error:
                raise OSError(f"cannot listen on {self.config.metrics_listen} "
                              f"(--metrics-listen): {error}") from error
            self._stop_metrics = metrics.stop
            self.guard.timed = metrics.timed
        # "liveness" answers SERVING while the process runs (for liveness probes); the
        # rest only once the node takes part in Paxos (for readiness probes).
        await self.health.set(LIVENESS_SERVICE, health_pb2.HealthCheckResponse.SERVING)
        for service in ("", "ledger.v1.Ledger"):
            await self.health.set(service, health_pb2.HealthCheckResponse.NOT_SERVING)
        if self.identity.join_pending or self.store.identity() is not None:
            self._admission = asyncio.create_task(self._admit())
        else:
            await self._serve_paxos()

    async def _admit(self) -> None:
        await admit(self.config.cluster, self.identity, self.store.durable_seq(),
                    self.config.security)
        if self.identity.join_pending:
            self.identity = dataclasses.replace(self.identity, join_pending=False)
            self.store.set_identity(self.identity)
            log.info("every member confirmed it holds no record of node %s: voting",
                     self.config.node_id)
        await self._serve_paxos()

    async def _serve_paxos(self) -> None:
        self.transport.start()
        self._driver_task = asyncio.create_task(self.driver.run())
        self.bank.start()
        self.admitted.set()
        for service in ("", "ledger.v1.Ledger"):
            await self.health.set(service, health_pb2.HealthCheckResponse.SERVING)
        log.info("node %s serving on %s (cluster %s)", self.config.node_id,
                 self.config.bind_address, self.config.cluster.canonical())

    async def wait(self) -> None:
        """Until a stop is requested, the driver fails, or admission refuses the node."""
        stopped = asyncio.create_task(self._stopped.wait())
        if self._admission is not None:
            done, _ = await asyncio.wait({self._admission, stopped},
                                         return_when=asyncio.FIRST_COMPLETED)
            if self._admission in done:
                self._admission.result()  # re-raise RecoveryRequired
            if self._stopped.is_set():
                return
        if self._driver_task is None:
            raise RuntimeError("wait() before start()")
        done, _ = await asyncio.wait({self._driver_task, stopped},
                                     return_when=asyncio.FIRST_COMPLETED)
        if self._driver_task in done:
            self._driver_task.result()  # re-raise what ended the driver

    def request_stop(self) -> None:
        self._stopped.set()

    async def _copy_counters(self) -> None:
        while True:
            await asyncio.sleep(METRICS_COPY_INTERVAL_S)
            self._copy_metrics()

    def _copy_metrics(self) -> None:
        """On the loop: what a scrape (on the metrics thread) reads next."""
        self._counters_seen = self.driver.counter_values()
        self._histograms_seen = self.driver.histograms()

    async def stop(self) -> None:
        if self._metrics_copier is not None:
            self._metrics_copier.cancel()
        if self._stop_metrics is not None:
            self._stop_metrics()
        if self._admission is not None and not self._admission.done():
            self._admission.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._admission
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace=1.0)
        if self.health_server is not None:
            await self.health_server.stop(grace=None)
        await self.bank.close()
        await self.forwarder.close()
        await self.peer_copies.close()
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
        self.book.flush()
        self.store.close()
        log.info("node %s stopped cleanly", self.config.node_id)


async def serve(config: ServeConfig) -> None:
    """Run a node until SIGTERM or SIGINT, then shut down cleanly.

    A node that finds one of its promise or vote records damaged stops, goes through
    `ledger recover` itself (every other member must answer), and serves again.
    """
    stop_requested = asyncio.Event()
    while True:
        node = await _serve_once(config, stop_requested)
        if not node.recovery_requested or stop_requested.is_set():
            return
        log.warning("node %s recovers itself from a damaged record (every other member "
                    "must answer)", config.node_id)
        done = await asyncio.to_thread(
            functools.partial(recover, tls=config.tls, revocation_list=config.revocation_list,
                              bind_address=config.bind_address,
                              stopped=stop_requested.is_set),
            config.node_id, str(config.data_dir), config.cluster, LedgerStateMachine.TABLES,
            log.warning)
        log.warning("node %s recovered as incarnation %s; serving again", config.node_id,
                    done.incarnation)


async def _serve_once(config: ServeConfig, stop_requested: asyncio.Event) -> NodeServer:
    store = open_store(config)
    try:
        check_identity(store, config.node_id, config.cluster)
    except Exception:
        store.close()
        raise
    node = NodeServer(config, store)

    def request_stop() -> None:
        stop_requested.set()
        node.request_stop()

    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, request_stop)
    if node.revocations is not None:
        revocations = node.revocations
        loop.add_signal_handler(signal.SIGHUP, lambda: revocations.reload(strict=False))
    await node.start()
    try:
        await node.wait()
    except RecoveryRequired:
        log.critical("refusing to vote: this data directory cannot vouch for its state")
        raise
    finally:
        await node.stop()
    return node
