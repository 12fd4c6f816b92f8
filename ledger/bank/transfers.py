"""Transfers between accounts: Megastore's transactional queue, over two accounts' logs.

1. The debit (TRANSFER_OUT) is decided in the source's log like a withdrawal:
   refused there, final, without funds; applied, it leaves the transfer pending in
   the source's state and in every replica's "pending" table.
2. The credit (TRANSFER_IN) is decided in the destination's log, keyed by the source
   and the transfer's id apart from the ids clients use: however many nodes propose
   it, it applies once. A credit that would take the destination past the balance
   limit is refused there (it bounces).
3. The source's log ends the transfer: a settlement (no money moves) once the credit
   applied, a refund (the money back, which can never bounce: the source's pending
   money counts against its limit) once it bounced.

Any node may run steps 2 and 3 for a transfer it finds pending (the `Courier`), and
each is idempotent, so a transfer whose proposer died after its debit is completed
by another node, exactly once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from ledger import errors
from ledger.accounts import Kind, Operation, Pending
from ledger.accounts.validation import (
    check_account_id,
    check_amount,
    check_memo,
    check_request_id,
)
from ledger.bank import failpoints
from ledger.bank.answers import quarantined
from ledger.bank.model import TransactionResult
from ledger.bank.requests import check_principal, undecided
from ledger.bank.state_machine import LedgerStateMachine
from ledger.bank.writes import AccountWriters
from ledger.node.consensus import AccountQuarantined, Consensus, NoQuorum

SETTLE_TIMEOUT_S = 30.0  # a settlement nobody waits for; the courier retries after it


@dataclass(frozen=True, slots=True)
class TransferRequest:
    from_account: str
    to_account: str
    amount: int
    request_id: str  # the transfer's id, in the source's request ids
    memo: str = ""
    principal: str = ""  # who asked: the authenticated caller's name


@dataclass(frozen=True, slots=True)
class Delivery:
    """How a transfer's credit was decided, and its refund if it bounced."""

    to_position: int  # the credit's number in the destination's history
    bounced: bool
    refund_position: int  # the refund's number in the source's history (when bounced)


@dataclass(frozen=True, slots=True)
class TransferResult:
    from_account: str
    to_account: str
    from_position: int  # the debit's number in the source's history
    from_balance: int  # the source's balance right after the debit
    duplicate: bool  # the debit had been decided before: this call wrote no debit
    delivery: Delivery


def debit_for(request: TransferRequest, now_ms: int) -> Operation:
    """The debit a transfer asks for, validated; InvalidRequest names what is wrong."""
    check_account_id(request.from_account)
    check_account_id(request.to_account)
    if request.from_account == request.to_account:
        raise errors.InvalidRequest(
            f"a transfer needs two accounts; {request.from_account!r} is on both sides")
    check_amount(request.amount)
    check_request_id(request.request_id)
    check_memo(request.memo)
    check_principal(request.principal)
    return Operation(Kind.TRANSFER_OUT, request.amount, request.request_id, request.memo,
                     now_ms, request.principal, request.to_account)


class Transfers:
    """Runs transfers through the account writers: debit, credit, then settle or refund."""

    def __init__(self, consensus: Consensus, machine: LedgerStateMachine,
                 writers: AccountWriters, clock_ms: Callable[[], int]) -> None:
        self._consensus = consensus
        self._machine = machine
        self._writers = writers
        self._clock_ms = clock_ms

    async def transfer(self, request: TransferRequest, timeout_s: float) -> TransferResult:
        """Debit, then deliver; answers once the credit is chosen (and a bounced one's
        refund). UNAVAILABLE if that takes longer than `timeout_s`: retrying with the
        same request id is safe, and the transfer completes meanwhile anyway."""
        debit = debit_for(request, self._clock_ms())
        deadline = time.monotonic() + timeout_s
        await self._confirm_open(request.to_account, deadline)
        debited = await self._decide(request.from_account, debit, deadline)
        failpoints.reached(failpoints.AFTER_TRANSFER_DEBIT)
        decision = self._machine.decision_of(request.from_account, debit)
        assert decision is not None, "a decided debit has its decision applied here"
        transfer = Pending(request.request_id, request.to_account, request.amount,
                           request.memo, request.principal, decision.slot)
        delivery = await self.deliver(request.from_account, transfer, deadline)
        return TransferResult(request.from_account, request.to_account, debited.position,
                              debited.balance, debited.duplicate, delivery)

    async def deliver(self, source: str, transfer: Pending, deadline: float) -> Delivery:
        """Steps 2 and 3 for a debited transfer: idempotent, so any node may run them,
        any number of times."""
        now_ms = self._clock_ms()
        credit = Operation(Kind.TRANSFER_IN, transfer.amount, transfer.request_id,
                           transfer.memo, now_ms, transfer.principal, source,
                           transfer.debit_slot)
        try:
            credited = await self._decide(transfer.to_account, credit, deadline)
        except errors.BalanceLimit as bounced:
            refund = Operation(Kind.TRANSFER_REFUND, transfer.amount, transfer.request_id,
                               transfer.memo, now_ms, transfer.principal, transfer.to_account)
            refunded = await self._decide(source, refund, deadline)
            to_position = bounced.position if bounced.position is not None else 0
            return Delivery(to_position, True, refunded.position)
        applied = self._machine.decision_of(transfer.to_account, credit)
        assert applied is not None, "a decided credit has its decision applied here"
        settle = Operation(Kind.TRANSFER_SETTLE, transfer.amount, transfer.request_id,
                           transfer.memo, now_ms, transfer.principal, transfer.to_account,
                           applied.slot)
        # Nobody waits for the settlement: the credit is what the caller asked about.
        # Should it fail, the transfer stays pending and the courier settles it.
        settling = self._writers.enqueue(source, settle, time.monotonic() + SETTLE_TIMEOUT_S)
        settling.future.add_done_callback(_ignore_outcome)
        return Delivery(credited.position, False, 0)

    async def _decide(self, account: str, operation: Operation, deadline: float
                      ) -> TransactionResult:
        request = self._writers.enqueue(account, operation, deadline)
        timeout_s = max(deadline - time.monotonic(), 0.001)
        try:
            async with asyncio.timeout(timeout_s):
                return await request.future
        except TimeoutError:
            raise undecided(request, timeout_s) from None

    async def _confirm_open(self, account: str, deadline: float) -> None:
        """The destination must exist before anything is written: unknown here, a
        majority is asked before calling it NOT_FOUND."""
        if self._machine.account(account).state.opened:
            return
        try:
            await self._consensus.read_barrier(account, deadline - time.monotonic())
        except NoQuorum as error:
            raise errors.Unavailable(str(error)) from None
        except AccountQuarantined as error:
            raise quarantined(account, str(error)) from None
        if not self._machine.account(account).state.opened:
            raise errors.AccountNotFound(
                f"account {account!r} does not exist; open it first (nothing was debited)")


def _ignore_outcome(future: asyncio.Future[TransactionResult]) -> None:
    if not future.cancelled():
        future.exception()  # retrieved: a failed settlement is the courier's to retry


def transferred(task: asyncio.Task[TransferResult]) -> TransferResult | errors.LedgerError:
    """A batch's transfer once the batch's wait is over (the wait's timeout is the
    transfer's own, so it has ended by then, one way or another)."""
    if not task.done():
        task.cancel()  # what it left pending, the courier completes
        return errors.Unavailable("the transfer did not complete in time; retrying it with "
                                  "the same request id is safe")
    error = task.exception()
    if error is None:
        return task.result()
    if not isinstance(error, errors.LedgerError):
        raise error  # a bug: let the servicer's caller see it, not a made-up answer
    return error
