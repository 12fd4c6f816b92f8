"""Applying operations to an account: deterministic, total, overdraft as a result."""

from __future__ import annotations

from collections.abc import Iterable

from ledger.accounts.model import (
    MAX_AMOUNT,
    MAX_BALANCE,
    AccountState,
    Applied,
    Kind,
    NoOp,
    Operation,
    Refusal,
    Refused,
    Skip,
    Verdict,
)


def apply_operation(
    state: AccountState, operation: Operation, already_decided: bool
) -> tuple[AccountState, Verdict]:
    """The account after `operation`, and its verdict.

    `already_decided` says an earlier operation in this account's log with the
    same request id was applied or refused: that one decides, later ones have no
    effect. An open is
    position 0; deposits and withdrawals are numbered after it. A refused
    operation is numbered too (it is part of the history) but moves no money.
    """
    assert 0 <= operation.amount <= MAX_AMOUNT
    if already_decided:
        return state, NoOp(Skip.DUPLICATE)
    if operation.kind is Kind.OPEN:
        if state.opened:
            return state, NoOp(Skip.ALREADY_OPEN)
        return AccountState(True, operation.amount, 1), Applied(0, operation.amount)
    if not state.opened:
        return state, NoOp(Skip.NOT_OPEN)
    assert operation.amount >= 1
    position = state.operations
    if operation.kind is Kind.DEPOSIT:
        balance = state.balance + operation.amount
        if balance > MAX_BALANCE:
            verdict: Verdict = Refused(position, state.balance, Refusal.BALANCE_LIMIT)
            return AccountState(True, state.balance, position + 1), verdict
    else:
        assert operation.kind is Kind.WITHDRAWAL
        if operation.amount > state.balance:
            verdict = Refused(position, state.balance, Refusal.INSUFFICIENT_FUNDS)
            return AccountState(True, state.balance, position + 1), verdict
        balance = state.balance - operation.amount
    return AccountState(True, balance, position + 1), Applied(position, balance)


def replay(entries: Iterable[Iterable[Operation]]) -> tuple[AccountState, list[Verdict]]:
    """Apply a whole log from slot 0: the state at its end and every verdict in order."""
    state = AccountState()
    decided: set[str] = set()
    verdicts: list[Verdict] = []
    for entry in entries:
        for operation in entry:
            state, verdict = apply_operation(state, operation, operation.request_id in decided)
            if not isinstance(verdict, NoOp):
                decided.add(operation.request_id)
            verdicts.append(verdict)
    return state, verdicts


def same_request(first: Operation, second: Operation) -> bool:
    """Do two operations with one request id ask for the same thing (kind, amount, memo)?"""
    return (first.kind, first.amount, first.memo) == (second.kind, second.amount, second.memo)
