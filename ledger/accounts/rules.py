"""Applying operations to an account: deterministic, total, overdraft as a result."""

from __future__ import annotations

from collections.abc import Iterable

from ledger.accounts.model import (
    MAX_AMOUNT,
    AccountState,
    Applied,
    Kind,
    NoOp,
    Operation,
    Pending,
    Refusal,
    Refused,
    Settled,
    Skip,
    Verdict,
)

#: What makes two operations "the same request" in one account's log.
DecisionKey = tuple[str, str, str]


def decision_key(operation: Operation) -> DecisionKey | None:
    """The key that decides an operation once per account's log; None for a settlement
    (the pending transfer itself is its key: it ends once).

    A credit is keyed by the source account and the transfer's request id, a refund by
    the transfer's id, each apart from the ids clients choose for this account, so a
    client's own deposit that happens to use the same id can never swallow either.
    """
    kind = operation.kind
    if kind is Kind.TRANSFER_IN:
        return ("credit", operation.counterparty, operation.request_id)
    if kind is Kind.TRANSFER_REFUND:
        return ("refund", "", operation.request_id)
    if kind is Kind.TRANSFER_SETTLE:
        return None
    return ("request", "", operation.request_id)


def apply_operation(
    state: AccountState, operation: Operation, already_decided: bool,
    pending: Pending | None = None,
) -> tuple[AccountState, Verdict]:
    """The account after `operation`, and its verdict.

    `already_decided` says an earlier operation in this account's log with the same
    decision key was applied or refused: that one decides, later ones have no
    effect. `pending` is the account's pending transfer with the operation's request
    id, for the kinds that end one. An open is position 0; every other operation
    that takes effect or is refused is numbered after it, except a settlement (no
    money moves). A refused operation is numbered too (it is part of the history)
    but moves no money.
    """
    assert 0 <= operation.amount <= MAX_AMOUNT
    if already_decided:
        return state, NoOp(Skip.DUPLICATE)
    kind = operation.kind
    if kind is Kind.OPEN:
        if state.opened:
            return state, NoOp(Skip.ALREADY_OPEN)
        return AccountState(True, operation.amount, 1), Applied(0, operation.amount)
    if not state.opened:
        return state, NoOp(Skip.NOT_OPEN)
    assert operation.amount >= 1
    if kind.ends_transfer:
        return _end_transfer(state, operation, pending)
    position = state.operations
    balance, pending_out = state.balance, state.pending_out
    if kind in (Kind.DEPOSIT, Kind.TRANSFER_IN):
        if operation.amount > state.room:
            refused = Refused(position, balance, Refusal.BALANCE_LIMIT)
            return AccountState(True, balance, position + 1, pending_out), refused
        balance += operation.amount
    else:
        assert kind in (Kind.WITHDRAWAL, Kind.TRANSFER_OUT)
        if operation.amount > balance:
            refused = Refused(position, balance, Refusal.INSUFFICIENT_FUNDS)
            return AccountState(True, balance, position + 1, pending_out), refused
        balance -= operation.amount
        if kind is Kind.TRANSFER_OUT:
            pending_out += operation.amount  # still within the limit: it left the balance
    return AccountState(True, balance, position + 1, pending_out), Applied(position, balance)


def _end_transfer(state: AccountState, operation: Operation, pending: Pending | None
                  ) -> tuple[AccountState, Verdict]:
    if pending is None or pending.amount != operation.amount:
        return state, NoOp(Skip.NOT_PENDING)
    pending_out = state.pending_out - pending.amount
    assert pending_out >= 0, "a pending transfer's amount is part of pending_out"
    if operation.kind is Kind.TRANSFER_SETTLE:
        return (AccountState(True, state.balance, state.operations, pending_out),
                Settled(pending.amount))
    # A refund always applies: the money was counted against the limit all along.
    position = state.operations
    balance = state.balance + pending.amount
    return AccountState(True, balance, position + 1, pending_out), Applied(position, balance)


def replay(entries: Iterable[Iterable[Operation]]) -> tuple[AccountState, list[Verdict]]:
    """Apply a whole log from slot 0: the state at its end and every verdict in order."""
    state = AccountState()
    decided: set[DecisionKey] = set()
    pending: dict[str, Pending] = {}
    verdicts: list[Verdict] = []
    for entry in entries:
        for operation in entry:
            key = decision_key(operation)
            state, verdict = apply_operation(state, operation, key in decided,
                                             pending.get(operation.request_id))
            if key is not None and not isinstance(verdict, NoOp):
                decided.add(key)
            verdicts.append(verdict)
            note_pending(pending, operation, verdict)
    return state, verdicts


def note_pending(pending: dict[str, Pending], operation: Operation, verdict: Verdict) -> None:
    """Keep an account's pending transfers (by request id) up to date after one verdict."""
    if operation.kind is Kind.TRANSFER_OUT and isinstance(verdict, Applied):
        pending[operation.request_id] = Pending(operation.request_id, operation.counterparty,
                                                operation.amount, operation.memo,
                                                operation.principal)
    elif operation.kind.ends_transfer and not isinstance(verdict, NoOp):
        del pending[operation.request_id]


def same_request(first: Operation, second: Operation) -> bool:
    """Do two operations with one request id ask for the same thing (kind, amount, memo,
    and for a transfer the other account)?"""
    return ((first.kind, first.amount, first.memo, first.counterparty)
            == (second.kind, second.amount, second.memo, second.counterparty))
