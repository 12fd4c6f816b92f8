"""The public Ledger API: decode, call the bank, encode; typed errors become status codes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TypeVar

import grpc

from ledger import errors
from ledger.accounts import WriteRequest
from ledger.api import wire
from ledger.bank.audit import Audit, check_page_size
from ledger.bank.model import TransactionResult
from ledger.bank.service import MAX_BATCH_OPERATIONS, Bank
from ledger.bank.transfers import TransferResult
from ledger.security.principal import current_principal
from ledger.server import convert, on_behalf, write_stream
from ledger.server.deadlines import time_budget_s
from ledger.server.front_door import CallGate
from ledger.v1 import ledger_pb2 as pb
from ledger.v1 import ledger_pb2_grpc as pb_grpc

T = TypeVar("T")


async def answer(context: grpc.aio.ServicerContext, call: Callable[[], Awaitable[T]]) -> T:
    """Run `call`; a LedgerError ends the RPC with its status code and message."""
    try:
        return await call()
    except errors.LedgerError as error:
        metadata = wire.refusal_metadata(error)
        if metadata:
            # The numbers behind a refusal, for clients that want them without parsing.
            context.set_trailing_metadata(metadata)
        await context.abort(wire.status_code(error), str(error))
        raise  # unreachable: abort raises


def _submitted(outcome: TransactionResult | TransferResult | errors.LedgerError,
               leader: Callable[[str], str]) -> pb.OperationResult:
    if isinstance(outcome, errors.LedgerError):
        return wire.operation_result(outcome)
    if isinstance(outcome, TransferResult):
        return wire.operation_result(convert.transfer_reply(outcome,
                                                            leader(outcome.from_account)))
    return wire.operation_result(convert.transaction_reply(outcome,
                                                           leader(outcome.account_id)))


class LedgerServicer(pb_grpc.LedgerServicer):
    def __init__(self, bank: Bank, max_deadline_s: float,
                 addresses: Sequence[str] = (), gate: CallGate | None = None,
                 node_id: str = "", record: write_stream.Record | None = None) -> None:
        """`addresses`: every member's address by node index, for the leader hints;
        `gate`: the front door's count of calls in flight, which each batch of a write
        stream joins (unary calls join it at the door); `node_id`: this node's, named
        in its audits; `record`: told how long each write stream batch took."""
        self._record = record
        self._bank = bank
        self._node_id = node_id
        self._gate = gate
        self._max_deadline_s = max_deadline_s
        self._addresses = tuple(addresses)

    def _leader(self, account: str) -> str:
        """Where the account's writes are decided, when another node leads it."""
        leader = self._bank.leader_of(account)
        if leader is None or not 0 <= leader < len(self._addresses):
            return ""
        return self._addresses[leader]

    def _budget_s(self, context: grpc.aio.ServicerContext) -> float:
        return time_budget_s(context, self._max_deadline_s)

    async def OpenAccount(
        self, request: pb.OpenAccountRequest, context: grpc.aio.ServicerContext
    ) -> pb.TransactionReply:
        principal = current_principal().name
        result = await answer(context, lambda: self._bank.open_account(
            request.account_id, request.opening_balance, request.request_id,
            self._budget_s(context), principal))
        return convert.transaction_reply(result, self._leader(result.account_id))

    async def Deposit(
        self, request: pb.DepositRequest, context: grpc.aio.ServicerContext
    ) -> pb.TransactionReply:
        principal = current_principal().name
        result = await answer(context, lambda: self._bank.deposit(
            request.account_id, request.amount, request.request_id, request.memo,
            self._budget_s(context), principal))
        return convert.transaction_reply(result, self._leader(result.account_id))

    async def Withdraw(
        self, request: pb.WithdrawRequest, context: grpc.aio.ServicerContext
    ) -> pb.TransactionReply:
        principal = current_principal().name
        result = await answer(context, lambda: self._bank.withdraw(
            request.account_id, request.amount, request.request_id, request.memo,
            self._budget_s(context), principal))
        return convert.transaction_reply(result, self._leader(result.account_id))

    async def Transfer(
        self, request: pb.TransferRequest, context: grpc.aio.ServicerContext
    ) -> pb.TransferReply:
        principal = current_principal().name
        result = await answer(context, lambda: self._bank.transfer(
            request.from_account_id, request.to_account_id, request.amount, request.request_id,
            request.memo, self._budget_s(context), principal))
        return convert.transfer_reply(result, self._leader(result.from_account))

    async def GetBalance(
        self, request: pb.GetBalanceRequest, context: grpc.aio.ServicerContext
    ) -> pb.BalanceReply:
        balance = await answer(context, lambda: self._bank.balance(
            request.account_id, convert.strong(request.consistency), self._budget_s(context)))
        return convert.balance_reply(balance)

    async def GetHistory(
        self, request: pb.GetHistoryRequest, context: grpc.aio.ServicerContext
    ) -> pb.HistoryReply:
        entries = await answer(context, lambda: self._bank.history(
            request.account_id, request.from_position, request.limit,
            convert.strong(request.consistency), self._budget_s(context)))
        return pb.HistoryReply(account_id=request.account_id,
                               entries=[convert.history_entry(entry) for entry in entries])

    async def ListAccounts(
        self, request: pb.ListAccountsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListAccountsReply:
        async def listed() -> list[str]:
            return self._bank.list_accounts(request.after, request.limit)

        return pb.ListAccountsReply(account_ids=await answer(context, listed))

    async def Audit(
        self, request: pb.AuditRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.AuditReply]:
        async def audited() -> tuple[Audit, int]:
            page_size = check_page_size(request.page_size)
            return await self._bank.audit(), page_size

        audit, page_size = await answer(context, audited)
        for reply in convert.audit_replies(audit, self._node_id, page_size,
                                           request.totals_only):
            yield reply

    async def Submit(
        self, request: pb.SubmitRequest, context: grpc.aio.ServicerContext
    ) -> pb.SubmitReply:
        caller = current_principal()

        async def submitted() -> list[pb.OperationResult]:
            # Whose operations these are (only a member may name others), before any work.
            principals = on_behalf.submit_principals(caller, request.on_behalf_of,
                                                     len(request.operations))
            forwarded = on_behalf.forwarded(caller, context.invocation_metadata() or ())
            return await self._decide(request.operations, principals,
                                      self._budget_s(context), forwarded)

        return pb.SubmitReply(results=await answer(context, submitted))

    async def SubmitStream(
        self, requests: AsyncIterator[pb.StreamRequest], context: grpc.aio.ServicerContext
    ) -> None:
        caller = current_principal()
        forwarded = on_behalf.forwarded(caller, context.invocation_metadata() or ())

        async def decide(request: pb.StreamRequest, budget_s: float
                         ) -> list[pb.OperationResult]:
            # Whose operations these are (only a member may name others), before any work.
            principals = on_behalf.submit_principals(caller, request.on_behalf_of,
                                                     len(request.operations))
            return await self._decide(request.operations, principals, budget_s, forwarded)

        await write_stream.serve(requests, context, decide, self._gate, self._max_deadline_s,
                                 self._record or write_stream.unrecorded)

    async def _decide(self, operations: Sequence[pb.BatchOperation],
                      principals: Sequence[str], budget_s: float, forwarded: bool,
                      ) -> list[pb.OperationResult]:
        """A batch's results, in order: each operation decided as its single call would
        be; a batch too large is refused whole (InvalidRequest) before any work."""
        # Every operation counts, before any work: empty ones too.
        if len(operations) > MAX_BATCH_OPERATIONS:
            raise errors.InvalidRequest(
                f"a batch holds at most {MAX_BATCH_OPERATIONS} operations, not "
                f"{len(operations)}")
        # Operations that do not decode get their error in place; the rest go to the
        # bank together, and their results fill the remaining places in order.
        decoded: list[WriteRequest | errors.LedgerError] = []
        for operation, principal in zip(operations, principals, strict=True):
            try:
                decoded.append(wire.write_request(operation, principal))
            except errors.InvalidRequest as invalid:
                decoded.append(invalid)
        writes = [d for d in decoded if isinstance(d, WriteRequest)]
        decided = iter(await self._bank.submit(writes, budget_s, forwarded))
        return [_submitted(next(decided) if isinstance(d, WriteRequest) else d, self._leader)
                for d in decoded]
