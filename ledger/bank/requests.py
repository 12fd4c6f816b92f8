"""A write on its way through the bank: validated into an operation, queued, answered."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from ledger import errors
from ledger.accounts import Kind, Operation, WriteRequest
from ledger.accounts.validation import (
    check_account_id,
    check_amount,
    check_memo,
    check_opening_balance,
    check_request_id,
)
from ledger.bank.model import TransactionResult
from ledger.security.principal import check_name


@dataclass(slots=True, eq=False)
class PendingWrite:
    """A validated write waiting for its account's worker to decide it."""

    account: str
    operation: Operation
    future: asyncio.Future[TransactionResult]
    deadline: float  # time.monotonic() by which the caller wants an answer
    forwarded: bool = False  # another node sent it here: never forward it again

    def succeed(self, result: TransactionResult) -> None:
        if not self.future.done():
            self.future.set_result(result)

    def fail(self, error: Exception) -> None:
        if not self.future.done():
            self.future.set_exception(error)


def operation_for(write: WriteRequest, now_ms: int) -> Operation:
    """The operation a write asks for, validated; InvalidRequest names what is wrong."""
    if write.kind.in_transfer:  # a transfer's operations are written by `transfers` only
        raise errors.InvalidRequest(f"a {write.kind.value} is only written by a transfer")
    check_account_id(write.account_id)
    check_request_id(write.request_id)
    check_principal(write.principal)
    if write.kind is Kind.OPEN:
        check_opening_balance(write.amount)
        return Operation(Kind.OPEN, write.amount, write.request_id, "", now_ms,
                         write.principal)
    check_amount(write.amount)
    check_memo(write.memo)
    return Operation(write.kind, write.amount, write.request_id, write.memo, now_ms,
                     write.principal)


def check_principal(principal: str) -> None:
    """The servicers pass authenticated names; anything else would make the log entry
    malformed on every replica, so it is refused here, before anything is written."""
    if not principal:
        return  # a write made inside the node
    try:
        check_name(principal)
    except ValueError as error:
        raise errors.InvalidRequest(str(error)) from None


def as_write(pending: PendingWrite) -> WriteRequest:
    """The write a pending request stands for (to forward it to another node)."""
    operation = pending.operation
    return WriteRequest(operation.kind, pending.account, operation.amount,
                        operation.request_id, operation.memo, operation.principal,
                        operation.counterparty)


def fail_all(requests: list[PendingWrite], error: Exception) -> None:
    for request in requests:
        request.fail(error)


def undecided(request: PendingWrite, timeout_s: float) -> errors.Unavailable:
    return errors.Unavailable(
        f"no majority decided request {request.operation.request_id!r} on account "
        f"{request.account!r} within {timeout_s:.1f}s: it may or may not have been applied; "
        "retrying with the same request id is safe")


def settled(request: PendingWrite, timeout_s: float) -> TransactionResult | errors.LedgerError:
    """A batch request's result once the batch's wait is over."""
    future = request.future
    if not future.done():
        future.cancel()
        return undecided(request, timeout_s)
    error = future.exception()
    if error is not None:
        if not isinstance(error, errors.LedgerError):
            raise error  # a bug: let the servicer's caller see it, not a made-up answer
        return error
    return future.result()
