"""Forwarding writes to the node that leads an account, over its public Submit RPC."""

from __future__ import annotations

import grpc

from ledger import errors
from ledger.accounts import WriteRequest
from ledger.api import wire
from ledger.bank.model import TransactionResult
from ledger.node.cluster import ClusterConfig
from ledger.node.transport import open_channel
from ledger.security.tls import Security
from ledger.v1 import ledger_pb2 as pb
from ledger.v1 import ledger_pb2_grpc as pb_grpc

#: Marks a call one node makes to another on a client's behalf: it is not forwarded again.
FORWARDED = ("ledger-forwarded", "1")


class Forwarder:
    """Calls other nodes' Submit; a node that does not answer becomes Unavailable."""

    def __init__(self, cluster: ClusterConfig, security: Security, own_id: str) -> None:
        self._cluster = cluster
        self._security = security
        self._own_id = own_id
        self._channels: dict[int, grpc.aio.Channel] = {}
        self._stubs: dict[int, pb_grpc.LedgerStub] = {}

    def _stub(self, node: int) -> pb_grpc.LedgerStub:
        stub = self._stubs.get(node)
        if stub is None:
            channel = open_channel(self._cluster.members[node].address,
                                   self._security)
            self._channels[node] = channel
            stub = self._stubs[node] = pb_grpc.LedgerStub(channel)
        return stub

    async def __call__(self, node: int, writes: list[WriteRequest], timeout_s: float
                       ) -> list[TransactionResult | errors.LedgerError]:
        # Each write keeps the principal that asked for it (the leader honours this from
        # members only). A write made inside this node has none: it goes as this node's.
        principals = [w.principal or self._own_id for w in writes]
        request = pb.SubmitRequest(operations=[wire.batch_operation(w) for w in writes],
                                   on_behalf_of=principals)
        try:
            reply = await self._stub(node).Submit(request, timeout=timeout_s,
                                                  metadata=(FORWARDED,))
        except grpc.aio.AioRpcError as error:
            raise errors.Unavailable(f"node {self._cluster.members[node].node_id} did not "
                                     f"decide forwarded writes: {error.code().name}") from None
        results: list[TransactionResult | errors.LedgerError] = []
        for write, result in zip(writes, reply.results, strict=True):
            outcome = wire.operation_outcome(result)
            if isinstance(outcome, errors.LedgerError):
                outcome.request_id = write.request_id
                results.append(outcome)
            else:
                results.append(TransactionResult(outcome.account_id, outcome.position,
                                                 outcome.balance, outcome.duplicate))
        return results

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close()
