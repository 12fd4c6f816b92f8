"""Forwarding writes to the node that leads an account, over its public write stream."""

from __future__ import annotations

import grpc

from ledger import errors
from ledger.accounts import WriteRequest
from ledger.api import wire
from ledger.bank.model import TransactionResult
from ledger.node.cluster import ClusterConfig
from ledger.node.transport import open_channel
from ledger.security.tls import Security
from ledger.server.forward_stream import ForwardStream
from ledger.v1 import ledger_pb2_grpc as pb_grpc

#: Marks a call one node makes to another on a client's behalf: it is not forwarded again.
FORWARDED = ("ledger-forwarded", "1")


class Forwarder:
    """Forwards writes to other nodes over one write stream each (ForwardStream); a node
    that does not answer becomes Unavailable."""

    def __init__(self, cluster: ClusterConfig, security: Security, own_id: str) -> None:
        self._cluster = cluster
        self._security = security
        self._own_id = own_id
        self._channels: dict[int, grpc.aio.Channel] = {}
        self._streams: dict[int, ForwardStream] = {}

    def _stream(self, node: int) -> ForwardStream:
        stream = self._streams.get(node)
        if stream is None:
            channel = open_channel(self._cluster.members[node].address, self._security)
            self._channels[node] = channel
            stub = pb_grpc.LedgerStub(channel)
            stream = self._streams[node] = ForwardStream(
                lambda: stub.SubmitStream(metadata=(FORWARDED,)),
                self._cluster.members[node].node_id)
        return stream

    @property
    def messages_sent(self) -> int:
        return sum(stream.messages_sent for stream in self._streams.values())

    async def __call__(self, node: int, writes: list[WriteRequest], timeout_s: float
                       ) -> list[TransactionResult | errors.LedgerError]:
        # Each write keeps the principal that asked for it (the leader honours this from
        # members only). A write made inside this node has none: it goes as this node's.
        principals = [w.principal or self._own_id for w in writes]
        replies = await self._stream(node).submit([wire.batch_operation(w) for w in writes],
                                                  principals, timeout_s)
        results: list[TransactionResult | errors.LedgerError] = []
        for write, result in zip(writes, replies, strict=True):
            outcome = wire.operation_outcome(result)
            if isinstance(outcome, errors.LedgerError):
                outcome.request_id = write.request_id
                results.append(outcome)
            else:
                results.append(TransactionResult(outcome.account_id, outcome.position,
                                                 outcome.balance, outcome.duplicate))
        return results

    async def close(self) -> None:
        for stream in self._streams.values():
            await stream.close()
        for channel in self._channels.values():
            await channel.close()
