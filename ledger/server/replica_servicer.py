"""The peer API (Replica.Step and Replica.Stream): decode, hand to the driver, encode."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc

from ledger.node import peer_codec
from ledger.node.cluster import ClusterConfig, ConfigError
from ledger.node.driver import NodeDriver
from ledger.node.dropped import DroppedMessages
from ledger.node.peer_limits import PeerLimits
from ledger.paxos import Envelope
from ledger.v1 import replica_pb2 as pb
from ledger.v1 import replica_pb2_grpc as pb_grpc

#: Requests of one peer stream read and not yet answered in a written reply; an honest
#: peer keeps at most transport.MAX_REQUESTS_IN_FLIGHT (4) unanswered.
MAX_INBOUND_REQUESTS_IN_FLIGHT = 16


#: About how many bytes of values one reply on a stream carries: catch-up answers to a
#: peer's many requests must not add up past what its channel accepts.
MAX_REPLY_BYTES = 16 << 20


def replies(answers: list[Envelope], requests_answered: int) -> list[pb.StepReply]:
    """The answers to `requests_answered` requests, in replies of about MAX_REPLY_BYTES;
    only the last says the requests are answered."""
    chunks: list[list[pb.PeerMessage]] = [[]]
    size = 0
    for envelope in answers:
        bytes_ = peer_codec.value_bytes(envelope.message)
        if chunks[-1] and size + bytes_ > MAX_REPLY_BYTES:
            chunks.append([])
            size = 0
        chunks[-1].append(peer_codec.to_pb(envelope.message))
        size += bytes_
    return [pb.StepReply(messages=chunk,
                         requests_answered=requests_answered if last else 0)
            for last, chunk in ((i == len(chunks) - 1, c) for i, c in enumerate(chunks))]


class ReplicaServicer(pb_grpc.ReplicaServicer):
    def __init__(self, cluster: ClusterConfig, node_index: int, driver: NodeDriver,
                 dropped: DroppedMessages) -> None:
        self._cluster = cluster
        self._node_index = node_index
        self._driver = driver
        self._limits = PeerLimits(cluster.size)
        self._dropped = dropped

    async def Step(
        self, request: pb.StepRequest, context: grpc.aio.ServicerContext
    ) -> pb.StepReply:
        source, envelopes = await self._decode(request, context)
        answers = await self._driver.deliver(source, envelopes)
        return pb.StepReply(messages=[peer_codec.to_pb(e.message) for e in answers],
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
                incoming = aiter(requests)
                while True:
                    # Backpressure: a request is read only while fewer than the bound are
                    # unanswered or answered but not yet written back (a caller that never
                    # reads its replies is held back by gRPC's flow control, not queued).
                    await places.acquire()
                    try:
                        request = await anext(incoming)
                    except StopAsyncIteration:
                        places.release()
                        break
                    source, envelopes = await self._decode(request, context)
                    future = self._driver.deliver(source, envelopes)
                    future.add_done_callback(on_answers)
                    delivered.add(future)
                    future.add_done_callback(delivered.discard)
                if delivered:
                    await asyncio.wait(delivered)  # a caller that half-closes hears them all
            finally:
                finished.put_nowait(None)

        places = asyncio.Semaphore(MAX_INBOUND_REQUESTS_IN_FLIGHT)
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
                    for reply in replies([e for answers in answered for e in answers],
                                         len(answered)):
                        await context.write(reply)
                    for _ in answered:
                        places.release()
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
        except ConfigError as error:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(error))
        if source == self._node_index:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                                f"a peer call must not claim this node's own id "
                                f"{request.source_node_id!r}")
        # A message that breaks a bound is dropped alone: the rest of the batch (other
        # accounts' messages, usually) carries on.
        envelopes = []
        for message in request.messages:
            try:
                decoded = peer_codec.from_pb(message, self._limits)
            except peer_codec.MalformedMessage as error:
                self._dropped.drop(request.source_node_id, error)
                continue
            envelopes.append(Envelope(source, self._node_index, decoded))
        return source, envelopes
