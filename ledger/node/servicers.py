"""gRPC servicers of the peer and admin APIs: decode, call the node, encode. No logic."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc

from ledger.node import convert
from ledger.node.cluster import ClusterConfig, ConfigError
from ledger.node.driver import NodeDriver
from ledger.node.status import BalanceOf, node_status
from ledger.paxos import Envelope
from ledger.storage.base import Store
from ledger.v1 import replica_pb2 as pb
from ledger.v1 import replica_pb2_grpc as pb_grpc

DEFAULT_DEADLINE_S = 10.0
DEADLINE_SHARE = 0.8  # give up early enough that the caller hears why


def time_budget_s(context: grpc.aio.ServicerContext) -> float:
    """How long the server may work on a call: about 80% of the caller's deadline."""
    remaining = context.time_remaining()
    if remaining is None:
        remaining = DEFAULT_DEADLINE_S
    return max(0.0, remaining * DEADLINE_SHARE)


class ReplicaServicer(pb_grpc.ReplicaServicer):
    def __init__(self, cluster: ClusterConfig, node_index: int, driver: NodeDriver) -> None:
        self._cluster = cluster
        self._node_index = node_index
        self._driver = driver

    async def Step(
        self, request: pb.StepRequest, context: grpc.aio.ServicerContext
    ) -> pb.StepReply:
        source, envelopes = await self._decode(request, context)
        answers = await self._driver.deliver(source, envelopes)
        return pb.StepReply(messages=[convert.to_pb(e.message) for e in answers],
                            requests_answered=1)

    async def Stream(
        self, requests: AsyncIterator[pb.StepRequest], context: grpc.aio.ServicerContext
    ) -> None:
        # Requests are read and handed to the node as they come; each one's answers are
        # written once durable. Answers ready together share one reply.
        finished: asyncio.Queue[list[Envelope] | None] = asyncio.Queue()

        def on_answers(future: asyncio.Future[list[Envelope]]) -> None:
            finished.put_nowait([] if future.cancelled() else future.result())

        async def read() -> None:
            delivered: set[asyncio.Future[list[Envelope]]] = set()
            try:
                async for request in requests:
                    source, envelopes = await self._decode(request, context)
                    future = self._driver.deliver(source, envelopes)
                    future.add_done_callback(on_answers)
                    delivered.add(future)
                    future.add_done_callback(delivered.discard)
                if delivered:
                    await asyncio.wait(delivered)  # a caller that half-closes hears them all
            finally:
                finished.put_nowait(None)

        reader = asyncio.create_task(read())
        try:
            ended = False
            while not ended:
                done = [await finished.get()]
                while not finished.empty():
                    done.append(finished.get_nowait())
                ended = None in done
                answered = [answers for answers in done if answers is not None]
                if answered:
                    await context.write(pb.StepReply(
                        messages=[convert.to_pb(e.message) for answers in answered
                                  for e in answers],
                        requests_answered=len(answered)))
            await reader  # an abort while reading ends the stream with its status
        finally:
            reader.cancel()

    async def _decode(
        self, request: pb.StepRequest, context: grpc.aio.ServicerContext
    ) -> tuple[int, list[Envelope]]:
        if request.cluster_fingerprint != self._cluster.fingerprint:
            await context.abort(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"cluster configuration mismatch: this node runs {self._cluster.canonical()} "
                f"(fingerprint {self._cluster.fingerprint}), the caller's fingerprint is "
                f"{request.cluster_fingerprint}",
            )
        try:
            source = self._cluster.index_of(request.source_node_id)
            envelopes = [Envelope(source, self._node_index, convert.from_pb(message))
                         for message in request.messages]
        except (ConfigError, convert.MalformedMessage) as error:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(error))
        return source, envelopes


class AdminServicer(pb_grpc.AdminServicer):
    def __init__(
        self, node_id: str, cluster: ClusterConfig, store: Store, driver: NodeDriver,
        balance_of: BalanceOf,
    ) -> None:
        self._node_id = node_id
        self._cluster = cluster
        self._store = store
        self._driver = driver
        self._balance_of = balance_of

    async def Status(
        self, request: pb.StatusRequest, context: grpc.aio.ServicerContext
    ) -> pb.StatusReply:
        status = node_status(self._node_id, self._cluster, self._store, self._driver,
                             self._balance_of, request.after, request.limit)
        return pb.StatusReply(
            node_id=status.node_id,
            peers=list(status.peers),
            cluster_fingerprint=status.cluster_fingerprint,
            accounts=[
                pb.AccountStatus(account=a.account, applied_slot=a.applied_slot,
                                 chosen_through=a.chosen_through, digest=a.digest,
                                 opened=a.balance is not None, balance=a.balance or 0)
                for a in status.accounts
            ],
            complete=status.complete,
            counters=self._driver.counters(),
        )

    async def Log(self, request: pb.LogRequest, context: grpc.aio.ServicerContext) -> pb.LogReply:
        limit = min(request.limit or 100, 1_000)
        values = self._store.chosen_values(request.account, request.from_slot, limit)
        summary = self._store.account_summary(request.account)
        return pb.LogReply(account=request.account, from_slot=request.from_slot,
                           values=list(values), chosen_through=summary.chosen_through)

    async def Trace(
        self, request: pb.TraceRequest, context: grpc.aio.ServicerContext
    ) -> pb.TraceReply:
        tracer = self._driver.tracer
        if request.stop:
            events = tracer.stop(request.account)
        else:
            if request.start:
                tracer.start(request.account)
            events = tracer.events(request.account)
        members = self._cluster.members
        return pb.TraceReply(events=[
            pb.TraceEvent(at_ms=e.at_ms, node_id=self._node_id, direction=e.direction,
                          peer_id="" if e.peer is None else members[e.peer].node_id, text=e.text)
            for e in events
        ])
