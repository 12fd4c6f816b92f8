"""Outbound peer traffic: every message for a peer that queued up meanwhile, in one call.

Each peer has an outbox and a sender task. The sender takes everything queued
(up to a bound) and makes one Step call; a few calls may be in flight at once,
so a slow peer does not stall a fast one and bursts batch up naturally. Answers
in the reply go back to the driver. A failed call is dropped: Paxos resends what
matters on its own timers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import grpc

from ledger.node import convert
from ledger.node.cluster import ClusterConfig
from ledger.paxos import Envelope, Learn
from ledger.v1 import replica_pb2 as pb
from ledger.v1 import replica_pb2_grpc as pb_grpc

log = logging.getLogger(__name__)

MAX_BATCH = 2_000  # messages per call
MAX_OUTBOX = 100_000  # queued messages per peer before the oldest are dropped
MAX_CALLS_IN_FLIGHT = 4  # per peer
LEARN_DELAY_S = 0.02  # a lone Learn waits this long for company
CALL_TIMEOUT_S = 2.0

CHANNEL_OPTIONS = [
    # A restarted peer is found again quickly.
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1_000),
    ("grpc.max_receive_message_length", 64 << 20),
    ("grpc.max_send_message_length", 64 << 20),
]


def open_channel(address: str) -> grpc.aio.Channel:
    return grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS)


class PeerTransport:
    def __init__(
        self,
        cluster: ClusterConfig,
        node_index: int,
        on_answers: Callable[[list[Envelope]], None],
    ) -> None:
        self._cluster = cluster
        self._node_index = node_index
        self._node_id = cluster.members[node_index].node_id
        self._on_answers = on_answers
        self._outboxes: dict[int, list[Envelope]] = {}
        self._ready: dict[int, asyncio.Event] = {}
        self._channels: dict[int, grpc.aio.Channel] = {}
        self._stubs: dict[int, pb_grpc.ReplicaStub] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._learn_timers: dict[int, asyncio.TimerHandle | None] = {}
        self.calls_failed = 0
        self.calls_made = 0

    def start(self) -> None:
        for index, member in enumerate(self._cluster.members):
            if index == self._node_index:
                continue
            self._outboxes[index] = []
            self._ready[index] = asyncio.Event()
            self._channels[index] = open_channel(member.address)
            self._stubs[index] = pb_grpc.ReplicaStub(self._channels[index])
            self._tasks.append(asyncio.create_task(self._sender(index)))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for channel in self._channels.values():
            await channel.close()

    def send(self, peer: int, envelopes: list[Envelope]) -> None:
        outbox = self._outboxes[peer]
        outbox.extend(envelopes)
        if len(outbox) > MAX_OUTBOX:
            del outbox[: len(outbox) - MAX_OUTBOX]  # Paxos resends what still matters
        if all(isinstance(e.message, Learn) for e in envelopes):
            # A Learn is news, not a question: it waits a little for the next message to
            # the same peer (the next Accept, usually) and travels in the same call.
            if self._learn_timers.get(peer) is None:
                self._learn_timers[peer] = asyncio.get_running_loop().call_later(
                    LEARN_DELAY_S, self._ready[peer].set)
            return
        self._ready[peer].set()

    async def _sender(self, peer: int) -> None:
        slots = asyncio.Semaphore(MAX_CALLS_IN_FLIGHT)
        outbox = self._outboxes[peer]
        ready = self._ready[peer]
        while True:
            await ready.wait()
            ready.clear()
            timer = self._learn_timers.pop(peer, None)
            if timer is not None:
                timer.cancel()
            while outbox:
                await slots.acquire()
                batch = outbox[:MAX_BATCH]
                del outbox[:MAX_BATCH]
                if not batch:
                    slots.release()
                    break
                task = asyncio.create_task(self._call(peer, batch))
                task.add_done_callback(lambda _: slots.release())

    async def _call(self, peer: int, batch: list[Envelope]) -> None:
        request = pb.StepRequest(
            cluster_fingerprint=self._cluster.fingerprint,
            source_node_id=self._node_id,
            messages=[convert.to_pb(envelope.message) for envelope in batch],
        )
        self.calls_made += 1
        try:
            reply = await self._stubs[peer].Step(request, timeout=CALL_TIMEOUT_S)
        except grpc.aio.AioRpcError as error:
            self.calls_failed += 1
            if error.code() == grpc.StatusCode.FAILED_PRECONDITION:
                log.error("peer %s refused us: %s", self._cluster.members[peer].node_id,
                          error.details())
            return
        answers = []
        for message in reply.messages:
            try:
                answers.append(Envelope(peer, self._node_index, convert.from_pb(message)))
            except convert.MalformedMessage as error:
                log.warning("dropping a malformed answer from peer %d: %s", peer, error)
        if answers:
            self._on_answers(answers)
