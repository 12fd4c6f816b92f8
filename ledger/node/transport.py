"""Outbound peer traffic: one long-lived stream per peer, many messages per request.

Each peer has an outbox and a sender task. The sender takes everything queued
(up to a bound) and writes it as one request on the peer's Stream call; a few
requests may be unanswered at once, so bursts batch up naturally while the peer
syncs. A message on an open stream costs a fraction of a unary call (etcd's peers
keep streams open for the same reason). Answers come back on the stream and go
to the driver. A request that fails is dropped: Paxos resends what matters on its
own timers. A stream that errs, or leaves requests unanswered for
CALL_TIMEOUT_S, is cancelled and the next request opens a new one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

import grpc

from ledger.node import peer_codec
from ledger.node.cluster import ClusterConfig
from ledger.node.dropped import DroppedMessages
from ledger.node.peer_book import PeerBook, PeerRefused
from ledger.node.peer_limits import PeerLimits
from ledger.paxos import Envelope, Learn
from ledger.security.tls import Security
from ledger.storage.base import Incarnation
from ledger.v1 import replica_pb2 as pb
from ledger.v1 import replica_pb2_grpc as pb_grpc

log = logging.getLogger(__name__)

MAX_BATCH = 2_000  # messages per request
MAX_BATCH_BYTES = 4 << 20  # about this many bytes of values per request (at least one message)
MAX_OUTBOX = 100_000  # queued messages per peer before the oldest are dropped
MAX_REQUESTS_IN_FLIGHT = 4  # unanswered requests per peer stream
LEARN_DELAY_S = 0.02  # a lone Learn waits this long for company
CALL_TIMEOUT_S = 2.0

MAX_PEER_MESSAGE_BYTES = 64 << 20  # one request or reply between peers

CHANNEL_OPTIONS = [
    # A restarted peer is found again quickly.
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1_000),
    ("grpc.max_receive_message_length", MAX_PEER_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_PEER_MESSAGE_BYTES),
]


def open_channel(address: str, security: Security) -> grpc.aio.Channel:
    """A channel to a peer, presenting this node's member certificate (unless --insecure)."""
    return security.aio_channel(address, CHANNEL_OPTIONS)


class _Stream:
    """One open Stream call to a peer, and how many more requests it may have unanswered."""

    def __init__(self, call: grpc.aio.StreamStreamCall) -> None:  # type: ignore[type-arg]
        self.call = call
        self.slots = asyncio.Semaphore(MAX_REQUESTS_IN_FLIGHT)
        self.unanswered = 0  # requests written and not yet answered
        self.broken = False
        self.reader: asyncio.Task[None] | None = None

    def answered(self, count: int) -> None:
        """The peer says `count` requests are answered: free their slots (never more than
        were written, whatever the reply claims)."""
        count = max(0, min(count, self.unanswered))
        self.unanswered -= count
        for _ in range(count):
            self.slots.release()

    def close(self) -> None:
        """Cancel the call; a sender waiting for a slot wakes and sees `broken`."""
        if not self.broken:
            self.broken = True
            self.call.cancel()
            for _ in range(MAX_REQUESTS_IN_FLIGHT):
                self.slots.release()


class PeerTransport:
    def __init__(
        self,
        cluster: ClusterConfig,
        node_index: int,
        on_answers: Callable[[list[Envelope]], None],
        dropped: DroppedMessages,
        incarnation: Incarnation,
        durable_seq: Callable[[], int],
        book: PeerBook,
        boot: int,
        security: Security,
    ) -> None:
        self._cluster = cluster
        self._security = security
        self._incarnation = peer_codec.incarnation_pb(incarnation)
        self._durable_seq = durable_seq
        self._book = book
        self._boot = boot
        self._limits = PeerLimits(cluster.size)
        self._dropped = dropped
        self._node_index = node_index
        self._node_id = cluster.members[node_index].node_id
        self._on_answers = on_answers
        self._outboxes: dict[int, list[Envelope]] = {}
        self._ready: dict[int, asyncio.Event] = {}
        self._channels: dict[int, grpc.aio.Channel] = {}
        self._stubs: dict[int, pb_grpc.ReplicaStub] = {}
        self._streams: dict[int, _Stream] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._learn_timers: dict[int, asyncio.TimerHandle | None] = {}
        self.calls_failed = 0
        self.calls_made = 0
        self._streams_opened: dict[int, int] = {}  # per peer: a rising count is a flapping link

    def start(self) -> None:
        for index, member in enumerate(self._cluster.members):
            if index == self._node_index:
                continue
            self._outboxes[index] = []
            self._ready[index] = asyncio.Event()
            self._channels[index] = open_channel(member.address, self._security)
            self._stubs[index] = pb_grpc.ReplicaStub(self._channels[index])
            self._tasks.append(asyncio.create_task(self._sender(index)))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for stream in self._streams.values():
            stream.close()
        readers = [s.reader for s in self._streams.values() if s.reader is not None]
        await asyncio.gather(*self._tasks, *readers, return_exceptions=True)
        for channel in self._channels.values():
            await channel.close()

    def send(self, peer: int, envelopes: list[Envelope]) -> None:
        outbox = self._outboxes[peer]
        outbox.extend(envelopes)
        if len(outbox) > MAX_OUTBOX:
            del outbox[: len(outbox) - MAX_OUTBOX]  # Paxos resends what still matters
        if all(isinstance(e.message, Learn) for e in envelopes):
            # A Learn is news, not a question: it waits a little for the next message to
            # the same peer (the next Accept, usually) and travels in the same request.
            if self._learn_timers.get(peer) is None:
                self._learn_timers[peer] = asyncio.get_running_loop().call_later(
                    LEARN_DELAY_S, self._ready[peer].set)
            return
        self._ready[peer].set()

    async def _sender(self, peer: int) -> None:
        outbox = self._outboxes[peer]
        ready = self._ready[peer]
        while True:
            await ready.wait()
            ready.clear()
            timer = self._learn_timers.pop(peer, None)
            if timer is not None:
                timer.cancel()
            while outbox:
                batch = take_batch(outbox)
                try:
                    await self._send_batch(peer, batch)
                except asyncio.CancelledError:
                    if asyncio.current_task().cancelling():  # type: ignore[union-attr]
                        raise  # stop(): this task is being cancelled
                    # Else a write cut short by the call's own cancellation (a reset).
                except Exception:  # the sender must outlive any one batch
                    log.exception("sending to peer %d failed; the batch is dropped", peer)

    async def _send_batch(self, peer: int, batch: list[Envelope]) -> None:
        """Write one request on the peer's stream, resetting a stream that stalled."""
        stream = self._stream(peer)
        try:
            async with asyncio.timeout(CALL_TIMEOUT_S):
                await stream.slots.acquire()
        except TimeoutError:
            self.calls_failed += 1
            stream.close()  # the peer has answered nothing for that long
        if stream.broken:
            return  # dropped: Paxos resends what still matters
        request = pb.StepRequest(
            cluster_fingerprint=self._cluster.fingerprint,
            source_node_id=self._node_id,
            messages=[peer_codec.to_pb(envelope.message) for envelope in batch],
            source_incarnation=self._incarnation,
            # Everything in the batch was durable before it was queued (Ready order).
            source_durable_seq=self._durable_seq(),
            source_boot=self._boot,
        )
        self.calls_made += 1
        stream.unanswered += 1
        try:
            async with asyncio.timeout(CALL_TIMEOUT_S):
                await stream.call.write(request)
        except TimeoutError:
            self.calls_failed += 1
            stream.close()
        except (grpc.RpcError, asyncio.InvalidStateError):
            stream.close()  # the reader counts the call's failure

    def _stream(self, peer: int) -> _Stream:
        """The open stream to `peer`, or a new one if there is none or it broke."""
        stream = self._streams.get(peer)
        if stream is None or stream.broken:
            stream = _Stream(self._stubs[peer].Stream())
            stream.reader = asyncio.create_task(self._read(peer, stream))
            self._streams[peer] = stream
            self._streams_opened[peer] = self._streams_opened.get(peer, 0) + 1
        return stream

    def health(self) -> dict[str, int]:
        """Per peer (by node index): is its stream up, how many streams were opened to
        it, requests on it not answered yet, and messages waiting in its outbox."""
        values: dict[str, int] = {}
        for peer, outbox in self._outboxes.items():
            stream = self._streams.get(peer)
            up = stream is not None and not stream.broken
            values[f"peer_stream_up:{peer}"] = int(up)
            values[f"peer_streams_opened:{peer}"] = self._streams_opened.get(peer, 0)
            values[f"peer_unanswered:{peer}"] = stream.unanswered if up and stream else 0
            values[f"peer_outbox:{peer}"] = len(outbox)
        return values

    async def _read(self, peer: int, stream: _Stream) -> None:
        try:
            async for reply in stream.call:
                stream.answered(reply.requests_answered)
                try:
                    self._book.admit(self._cluster.members[peer].node_id,
                                     peer_codec.incarnation_from_pb(reply, "source_incarnation"),
                                     reply.source_durable_seq, reply.source_boot)
                except PeerRefused as refused:
                    log.error("refusing answers from peer %s: %s",
                              self._cluster.members[peer].node_id, refused)
                    self.calls_failed += 1
                    return
                self._deliver(peer, reply.messages)
        except grpc.aio.AioRpcError as error:
            code = error.code()
            if code == grpc.StatusCode.FAILED_PRECONDITION:
                log.error("peer %s refused us: %s", self._cluster.members[peer].node_id,
                          error.details())
            elif code == grpc.StatusCode.UNIMPLEMENTED:
                log.error("peer %s has no Replica.Stream: every node must run this version",
                          self._cluster.members[peer].node_id)
            if code != grpc.StatusCode.CANCELLED:
                self.calls_failed += 1
        except asyncio.CancelledError:
            raise
        except Exception:  # a bad reply ends this stream, not the node
            log.exception("reading from peer %d failed; reopening the stream", peer)
            self.calls_failed += 1
        finally:
            stream.close()

    def _deliver(self, peer: int, messages: Sequence[pb.PeerMessage]) -> None:
        answers = []
        for message in messages:
            try:
                decoded = peer_codec.from_pb(message, self._limits)
            except peer_codec.MalformedMessage as error:
                self._dropped.drop(self._cluster.members[peer].node_id, error)
                continue
            answers.append(Envelope(peer, self._node_index, decoded))
        if answers:
            self._on_answers(answers)


def take_batch(outbox: list[Envelope]) -> list[Envelope]:
    """Take the next request's messages off the front of `outbox`: at most MAX_BATCH
    messages and, past the first, about MAX_BATCH_BYTES of values."""
    size = 0
    count = 0
    for envelope in outbox[:MAX_BATCH]:
        size += peer_codec.value_bytes(envelope.message)
        if count and size > MAX_BATCH_BYTES:
            break
        count += 1
    batch = outbox[:count]
    del outbox[:count]
    return batch
