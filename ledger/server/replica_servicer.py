"""The peer API (Replica.Step and Replica.Stream): decode, hand to the driver, encode."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc

from ledger.node import peer_codec
from ledger.node.cluster import ClusterConfig
from ledger.node.driver import NodeDriver
from ledger.node.dropped import DroppedMessages
from ledger.node.peer_book import PeerBook, PeerRefused
from ledger.node.peer_limits import PeerLimits
from ledger.paxos import Envelope
from ledger.security.principal import current_principal
from ledger.server.front_door import CallRefused
from ledger.server.rejoin_answers import identify_reply, member_refusal, recovery_tails_reply
from ledger.storage.base import Incarnation, StorageError, Store
from ledger.v1 import replica_pb2 as pb
from ledger.v1 import replica_pb2_grpc as pb_grpc

#: Requests of one peer stream read and not yet answered in a written reply; an honest
#: peer keeps at most transport.MAX_REQUESTS_IN_FLIGHT (4) unanswered.
MAX_INBOUND_REQUESTS_IN_FLIGHT = 16


#: About how many bytes of values one reply on a stream carries: catch-up answers to a
#: peer's many requests must not add up past what its channel accepts.
MAX_REPLY_BYTES = 16 << 20



def replies(answers: list[Envelope], requests_answered: int,
            stamp: pb.StepReply | None = None) -> list[pb.StepReply]:
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
    out = []
    for index, chunk in enumerate(chunks):
        reply = pb.StepReply(messages=chunk, requests_answered=(
            requests_answered if index == len(chunks) - 1 else 0))
        if stamp is not None:
            reply.MergeFrom(stamp)
        out.append(reply)
    return out


class ReplicaServicer(pb_grpc.ReplicaServicer):
    def __init__(self, cluster: ClusterConfig, node_index: int, driver: NodeDriver,
                 dropped: DroppedMessages, store: Store, incarnation: Incarnation,
                 book: PeerBook, admitted: asyncio.Event, boot: int) -> None:
        self._cluster = cluster
        self._node_index = node_index
        self._node_id = cluster.members[node_index].node_id
        self._driver = driver
        self._limits = PeerLimits(cluster.size)
        self._dropped = dropped
        self._store = store
        self._incarnation = peer_codec.incarnation_pb(incarnation)
        self._book = book
        self._admitted = admitted  # set once this node may take part in Paxos
        self._boot = boot

    def _stamp(self) -> pb.StepReply:
        """Who answers: this directory's incarnation and its commit count now (every
        answer was durable before it was handed back)."""
        return pb.StepReply(source_incarnation=self._incarnation,
                            source_durable_seq=self._store.durable_seq(),
                            source_boot=self._boot)

    async def Step(
        self, request: pb.StepRequest, context: grpc.aio.ServicerContext
    ) -> pb.StepReply:
        source, envelopes = self._decode(request)
        answers = await self._driver.deliver(source, envelopes)
        reply = pb.StepReply(messages=[peer_codec.to_pb(e.message) for e in answers],
                             requests_answered=1)
        reply.MergeFrom(self._stamp())
        return reply

    async def Identify(
        self, request: pb.IdentifyRequest, context: grpc.aio.ServicerContext
    ) -> pb.IdentifyReply:
        self._check_member(request.cluster_fingerprint, request.node_id)
        return identify_reply(self._node_id, self._book.record(request.node_id))

    async def Rejoin(
        self, request: pb.RejoinRequest, context: grpc.aio.ServicerContext
    ) -> pb.RejoinReply:
        source = self._check_member(request.cluster_fingerprint, request.node_id)
        incarnation = peer_codec.incarnation_from_pb(request, "incarnation")
        if incarnation is None:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "no valid incarnation")
        try:
            self._book.rejoin(request.node_id, incarnation)
        except PeerRefused as refused:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(refused))
        # Recorded first, so nothing more of the former life is counted; then forget
        # what was; then report (see ledger.paxos.rejoin for why in this order).
        self._driver.forget_peer(source)
        # Its own rounds count too (a Phase 1 it finished with the former life's promise
        # used one), and a node that recovered earlier answers for its former life with
        # its floor (see ledger.paxos.rejoin).
        return pb.RejoinReply(node_id=self._node_id, max_round=max(
            self._store.max_promised_round(), self._store.round_floor(),
            self._store.reserved_round()))

    async def RecoveryTails(
        self, request: pb.RecoveryTailsRequest, context: grpc.aio.ServicerContext
    ) -> pb.RecoveryTailsReply:
        self._check_member(request.cluster_fingerprint, request.node_id)
        return recovery_tails_reply(self._store.recovery_tails, request)

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
                    source, envelopes = self._decode(request)
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
                                         len(answered), self._stamp()):
                        await context.write(reply)
                    for _ in answered:
                        places.release()
            await reader  # a request refused while reading ends the stream (CallRefused)
        finally:
            reader.cancel()

    def _check_member(self, fingerprint: str, node_id: str) -> int:
        """The caller's index, if it is another member of this cluster; else CallRefused
        (the front door ends the call with it)."""
        refusal = member_refusal(self._cluster, self._node_index, fingerprint, node_id,
                                 current_principal())
        if refusal is not None:
            raise CallRefused(*refusal)
        source = self._cluster.index_of(node_id)
        return source

    def _decode(self, request: pb.StepRequest) -> tuple[int, list[Envelope]]:
        if not self._admitted.is_set():
            raise CallRefused(grpc.StatusCode.UNAVAILABLE,
                              f"node {self._node_id} takes no part in Paxos yet: it is "
                              f"checking with the other members that its data is current")
        source = self._check_member(request.cluster_fingerprint, request.source_node_id)
        try:
            self._book.admit(request.source_node_id,
                             peer_codec.incarnation_from_pb(request, "source_incarnation"),
                             request.source_durable_seq, request.source_boot)
        except PeerRefused as refused:
            raise CallRefused(grpc.StatusCode.FAILED_PRECONDITION, str(refused)) from None
        except StorageError as error:  # a first contact is recorded durably, or not counted
            raise CallRefused(grpc.StatusCode.UNAVAILABLE,
                              f"cannot record the peer: {error}") from None
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
