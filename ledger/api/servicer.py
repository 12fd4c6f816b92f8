"""The Ledger gRPC servicer: decode, call the bank, encode; errors become status codes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import grpc

from ledger import errors
from ledger.accounts import Kind
from ledger.api.forwarder import FORWARDED
from ledger.bank.model import HistoryEntry, TransactionResult, WriteRequest
from ledger.bank.service import Bank
from ledger.node.servicers import time_budget_s
from ledger.v1 import ledger_pb2 as pb
from ledger.v1 import ledger_pb2_grpc as pb_grpc

T = TypeVar("T")

STATUS = {
    "INVALID_ARGUMENT": grpc.StatusCode.INVALID_ARGUMENT,
    "NOT_FOUND": grpc.StatusCode.NOT_FOUND,
    "ALREADY_EXISTS": grpc.StatusCode.ALREADY_EXISTS,
    "FAILED_PRECONDITION": grpc.StatusCode.FAILED_PRECONDITION,
    "UNAVAILABLE": grpc.StatusCode.UNAVAILABLE,
}


async def answer(context: grpc.aio.ServicerContext, call: Callable[[], Awaitable[T]]) -> T:
    """Run `call`; a LedgerError ends the RPC with its status code and message."""
    try:
        return await call()
    except errors.LedgerError as error:
        if isinstance(error, errors.Refused):
            # The numbers behind a refusal, for clients that want them without parsing.
            context.set_trailing_metadata(tuple(
                (key, str(value)) for key, value in (
                    ("ledger-reason", errors.refusal_reason(error)),
                    ("ledger-balance", error.balance), ("ledger-amount", error.amount),
                    ("ledger-position", error.position),
                ) if value is not None))
        await context.abort(STATUS.get(error.status, grpc.StatusCode.UNKNOWN), str(error))
        raise  # unreachable: abort raises


DECIDED_BY_THE_BANK = errors.LedgerError("placeholder")  # marks where a bank result goes


def _write_request(operation: pb.BatchOperation) -> WriteRequest:
    kind = operation.WhichOneof("operation")
    if kind == "open_account":
        o = operation.open_account
        return WriteRequest(Kind.OPEN, o.account_id, o.opening_balance, o.request_id)
    if kind in ("deposit", "withdraw"):
        t = getattr(operation, kind)
        return WriteRequest(Kind.DEPOSIT if kind == "deposit" else Kind.WITHDRAWAL,
                            t.account_id, t.amount, t.request_id, t.memo)
    raise errors.InvalidRequest("a batch operation must be an open, a deposit or a withdrawal")


def _result(outcome: TransactionResult | errors.LedgerError) -> pb.OperationResult:
    if isinstance(outcome, errors.LedgerError):
        code = STATUS.get(outcome.status, grpc.StatusCode.UNKNOWN)
        result = pb.OperationResult(code=code.value[0], message=str(outcome))
        if isinstance(outcome, errors.Refused):
            result.refusal.CopyFrom(pb.Refusal(
                reason=errors.refusal_reason(outcome), balance=outcome.balance or 0,
                amount=outcome.amount or 0, position=outcome.position or 0))
        return result
    return pb.OperationResult(code=0, reply=_transaction(outcome))


def _history_entry(entry: HistoryEntry) -> pb.Entry:
    return pb.Entry(position=entry.position, kind=KIND_TO_ENTRY_KIND[entry.kind],
                    amount=entry.amount, balance_after=entry.balance_after,
                    request_id=entry.request_id, memo=entry.memo, rejected=entry.rejected,
                    reject_reason=entry.reject_reason, recorded_at_ms=entry.recorded_at_ms)


KIND_TO_ENTRY_KIND = {Kind.OPEN: pb.ENTRY_KIND_OPEN, Kind.DEPOSIT: pb.ENTRY_KIND_DEPOSIT,
                      Kind.WITHDRAWAL: pb.ENTRY_KIND_WITHDRAWAL}


def _strong(consistency: int) -> bool:
    return consistency != pb.CONSISTENCY_LOCAL


def _transaction(result: TransactionResult) -> pb.TransactionReply:
    return pb.TransactionReply(account_id=result.account_id, position=result.position,
                               balance=result.balance, duplicate=result.duplicate)


class LedgerServicer(pb_grpc.LedgerServicer):
    def __init__(self, bank: Bank) -> None:
        self._bank = bank

    async def OpenAccount(
        self, request: pb.OpenAccountRequest, context: grpc.aio.ServicerContext
    ) -> pb.TransactionReply:
        result = await answer(context, lambda: self._bank.open_account(
            request.account_id, request.opening_balance, request.request_id,
            time_budget_s(context)))
        return _transaction(result)

    async def Deposit(
        self, request: pb.DepositRequest, context: grpc.aio.ServicerContext
    ) -> pb.TransactionReply:
        result = await answer(context, lambda: self._bank.deposit(
            request.account_id, request.amount, request.request_id, request.memo,
            time_budget_s(context)))
        return _transaction(result)

    async def Withdraw(
        self, request: pb.WithdrawRequest, context: grpc.aio.ServicerContext
    ) -> pb.TransactionReply:
        result = await answer(context, lambda: self._bank.withdraw(
            request.account_id, request.amount, request.request_id, request.memo,
            time_budget_s(context)))
        return _transaction(result)

    async def GetBalance(
        self, request: pb.GetBalanceRequest, context: grpc.aio.ServicerContext
    ) -> pb.BalanceReply:
        balance = await answer(context, lambda: self._bank.balance(
            request.account_id, _strong(request.consistency), time_budget_s(context)))
        return pb.BalanceReply(account_id=balance.account_id, balance=balance.balance,
                               position=balance.position)

    async def GetHistory(
        self, request: pb.GetHistoryRequest, context: grpc.aio.ServicerContext
    ) -> pb.HistoryReply:
        entries = await answer(context, lambda: self._bank.history(
            request.account_id, request.from_position, request.limit,
            _strong(request.consistency), time_budget_s(context)))
        return pb.HistoryReply(account_id=request.account_id,
                               entries=[_history_entry(entry) for entry in entries])

    async def ListAccounts(
        self, request: pb.ListAccountsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListAccountsReply:
        async def listed() -> list[str]:
            return self._bank.list_accounts(request.after, request.limit)

        return pb.ListAccountsReply(account_ids=await answer(context, listed))

    async def Submit(
        self, request: pb.SubmitRequest, context: grpc.aio.ServicerContext
    ) -> pb.SubmitReply:
        async def submitted() -> list[TransactionResult | errors.LedgerError]:
            outcomes: list[TransactionResult | errors.LedgerError] = []
            writes: list[WriteRequest] = []
            for operation in request.operations:
                try:
                    writes.append(_write_request(operation))
                except errors.InvalidRequest as invalid:
                    outcomes.append(invalid)
                else:
                    outcomes.append(DECIDED_BY_THE_BANK)
            forwarded = FORWARDED in tuple(context.invocation_metadata() or ())
            decided = iter(await self._bank.submit(writes, time_budget_s(context), forwarded))
            return [next(decided) if o is DECIDED_BY_THE_BANK else o for o in outcomes]

        outcomes = await answer(context, submitted)
        return pb.SubmitReply(results=[_result(outcome) for outcome in outcomes])
