"""The peer API (Replica.Step and Replica.Stream): decode, hand to the driver, encode."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc

from ledger.node import peer_codec
from ledger.node.cluster import ClusterConfig, ConfigError
from ledger.node.driver import NodeDriver
from ledger.paxos import Envelope
from ledger.v1 import replica_pb2 as pb
from ledger.v1 import replica_pb2_grpc as pb_grpc


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
                        messages=[peer_codec.to_pb(e.message) for answers in answered
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
            envelopes = [Envelope(source, self._node_index, peer_codec.from_pb(message))
                         for message in request.messages]
        except (ConfigError, peer_codec.MalformedMessage) as error:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(error))
        return source, envelopes
