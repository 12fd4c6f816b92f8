"""Forwarding writes to the node that leads an account, over the public Submit RPC."""

from __future__ import annotations

import grpc

from ledger import errors
from ledger.bank.model import TransactionResult, WriteRequest
from ledger.node.cluster import ClusterConfig
from ledger.node.transport import open_channel
from ledger.v1 import ledger_pb2 as pb
from ledger.v1 import ledger_pb2_grpc as pb_grpc

#: Marks a call one node makes to another on a client's behalf: it is not forwarded again.
FORWARDED = ("ledger-forwarded", "1")

KIND_TO_FIELD = {"open": "open_account", "deposit": "deposit", "withdrawal": "withdraw"}


def batch_operation(write: WriteRequest) -> pb.BatchOperation:
    if write.kind.value == "open":
        return pb.BatchOperation(open_account=pb.OpenAccountRequest(
            account_id=write.account_id, opening_balance=write.amount,
            request_id=write.request_id))
    request_type = pb.DepositRequest if write.kind.value == "deposit" else pb.WithdrawRequest
    body = request_type(account_id=write.account_id, amount=write.amount,
                        request_id=write.request_id, memo=write.memo)
    return pb.BatchOperation(**{KIND_TO_FIELD[write.kind.value]: body})


class Forwarder:
    """Calls other nodes' Submit; a node that does not answer becomes Unavailable."""

    def __init__(self, cluster: ClusterConfig) -> None:
        self._cluster = cluster
        self._channels: dict[int, grpc.aio.Channel] = {}
        self._stubs: dict[int, pb_grpc.LedgerStub] = {}

    def _stub(self, node: int) -> pb_grpc.LedgerStub:
        stub = self._stubs.get(node)
        if stub is None:
            channel = open_channel(self._cluster.members[node].address)
            self._channels[node] = channel
            stub = self._stubs[node] = pb_grpc.LedgerStub(channel)
        return stub

    async def __call__(self, node: int, writes: list[WriteRequest], timeout_s: float
                       ) -> list[TransactionResult | errors.LedgerError]:
        request = pb.SubmitRequest(operations=[batch_operation(w) for w in writes])
        try:
            reply = await self._stub(node).Submit(request, timeout=timeout_s,
                                                  metadata=(FORWARDED,))
        except grpc.aio.AioRpcError as error:
            raise errors.Unavailable(f"node {self._cluster.members[node].node_id} did not "
                                     f"decide forwarded writes: {error.code().name}") from None
        results: list[TransactionResult | errors.LedgerError] = []
        for write, result in zip(writes, reply.results, strict=True):
            if result.code == 0:
                r = result.reply
                results.append(TransactionResult(r.account_id, r.position, r.balance,
                                                 r.duplicate))
            else:
                status = grpc.StatusCode(_BY_NUMBER[result.code]).name
                refusal = result.refusal
                numbers = {"balance": refusal.balance, "amount": refusal.amount,
                           "position": refusal.position} if result.HasField("refusal") else {}
                failure = errors.from_status(status, result.message, refusal.reason, **numbers)
                failure.request_id = write.request_id
                results.append(failure)
        return results

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close()


_BY_NUMBER = {code.value[0]: code.value for code in grpc.StatusCode}
