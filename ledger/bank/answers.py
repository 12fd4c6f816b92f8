"""Decisions to answers: what a request is told, from how the log decided its request id."""

from __future__ import annotations

from collections import Counter

from ledger import errors
from ledger.accounts import Kind, same_request
from ledger.bank.codec import Decision
from ledger.bank.model import TransactionResult
from ledger.bank.requests import PendingWrite
from ledger.bank.state_machine import LedgerStateMachine


class Answers:
    """Answers requests from the applied prefix of their account's log."""

    def __init__(self, machine: LedgerStateMachine) -> None:
        self._machine = machine
        # Writes answered, by kind and outcome (applied, refused, duplicate), for metrics.
        self.answered: Counter[tuple[str, str]] = Counter()

    def known(self, request: PendingWrite) -> bool:
        """Answer from the applied prefix if it already decides the request."""
        account, operation = request.account, request.operation
        decision = self._machine.decision_of(account, operation)
        if decision is None and operation.kind.ends_transfer:
            if self._machine.pending_transfer(account, operation.request_id) is not None:
                return False
            # Ended already (or never pending): nothing more to write.
            state = self._machine.account(account).state
            request.succeed(TransactionResult(account, state.operations, state.balance, True))
            return True
        if decision is not None:
            self.answer(request, decision, duplicate=True)
            return True
        if operation.kind is Kind.OPEN and self._machine.account(account).state.opened:
            request.fail(errors.AccountExists(
                f"account {account!r} is already open (under another request id)"))
            return True
        return False

    def decided(self, request: PendingWrite, slot: int) -> None:
        """Our entry was chosen at `slot`: answer with the verdict applying it computed."""
        decision = self._machine.recent_decision(request.account, slot, request.operation)
        if decision is None and request.operation.kind.ends_transfer:
            self.known(request)  # another node's settlement or refund came first
            return
        if decision is None:  # applying found nothing to do (cannot happen with one opener)
            request.fail(errors.AccountExists(f"account {request.account!r} is already open"))
            return
        self.answer(request, decision, duplicate=decision.slot != slot)

    def answer(self, request: PendingWrite, decision: Decision, duplicate: bool) -> None:
        operation = request.operation
        if not same_request(decision.operation, operation):
            request.fail(errors.AccountExists(
                f"request id {operation.request_id!r} was already used on account "
                f"{request.account!r} for a {decision.operation.kind.value} of "
                f"{decision.operation.amount}; use a new request id for a new request"))
            return
        outcome = "duplicate" if duplicate else "refused" if decision.rejected else "applied"
        self.answered[(operation.kind.value, outcome)] += 1
        if decision.rejected:
            request.fail(refusal(decision, request.account))
            return
        request.succeed(TransactionResult(request.account, decision.position,
                                          decision.balance_after, duplicate))


def quarantined(account: str, reason: str) -> errors.AccountQuarantined:
    """The error for any request on an account this node stopped serving."""
    return errors.AccountQuarantined(
        f"account {account!r} is quarantined on this node: {reason}; a write it had "
        "already proposed may or may not be applied (retrying with the same request id is "
        "safe, and another node may still serve the account); an operator must look")


def refusal(decision: Decision, account: str) -> errors.Refused:
    """The error a refused operation is reported as, with the numbers that explain it."""
    op = decision.operation
    if op.kind in (Kind.WITHDRAWAL, Kind.TRANSFER_OUT):
        what = "withdrawal" if op.kind is Kind.WITHDRAWAL else f"transfer to {op.counterparty!r}"
        return errors.InsufficientFunds(
            f"insufficient funds: account {account!r} had a balance of {decision.balance_after} "
            f"when the {what} of {op.amount} was decided (operation {decision.position})",
            balance=decision.balance_after, amount=op.amount, position=decision.position)
    what = "deposit" if op.kind is Kind.DEPOSIT else f"transfer from {op.counterparty!r}"
    return errors.BalanceLimit(
        f"balance limit: a {what} of {op.amount} on account {account!r} would take its "
        f"balance of {decision.balance_after} past the limit (operation {decision.position})",
        balance=decision.balance_after, amount=op.amount, position=decision.position)
