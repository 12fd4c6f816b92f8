"""Transfers in the pure domain: a few accounts' logs, and a courier that delivers each
transfer's credit, settlement and refund late, out of order and more than once. Money
is never created or lost, nothing is credited twice, and a refund never bounces."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.accounts import (
    MAX_AMOUNT,
    MAX_BALANCE,
    AccountState,
    Applied,
    Kind,
    NoOp,
    Operation,
    Pending,
    Refusal,
    Refused,
    Settled,
    Verdict,
    apply_operation,
    decision_key,
    note_pending,
    replay,
)
from ledger.accounts.model import Skip

ACCOUNTS = ("a", "b", "c")


@dataclass
class Log:
    """One account's applied log: its state, what it decided, what it has pending."""

    name: str
    state: AccountState = field(default_factory=AccountState)
    decided: set[object] = field(default_factory=set)
    pending: dict[str, Pending] = field(default_factory=dict)
    entries: list[Operation] = field(default_factory=list)
    credits: dict[tuple[str, str], Verdict] = field(default_factory=dict)

    def apply(self, operation: Operation) -> Verdict:
        key = decision_key(operation)
        self.state, verdict = apply_operation(self.state, operation, key in self.decided,
                                              self.pending.get(operation.request_id))
        if key is not None and not isinstance(verdict, NoOp):
            self.decided.add(key)
        note_pending(self.pending, operation, verdict)
        self.entries.append(operation)
        if operation.kind is Kind.TRANSFER_IN and not isinstance(verdict, NoOp):
            self.credits[(operation.counterparty, operation.request_id)] = verdict
        return verdict


def in_flight(logs: dict[str, Log]) -> int:
    """Money debited and neither credited nor refunded (a bounced credit is in flight)."""
    total = 0
    for log in logs.values():
        for transfer in log.pending.values():
            credit = logs[transfer.to_account].credits.get((log.name, transfer.request_id))
            if not isinstance(credit, Applied):
                total += transfer.amount
    return total


steps = st.lists(st.tuples(st.sampled_from(["deposit", "withdraw", "transfer", "deliver"]),
                           st.sampled_from(ACCOUNTS), st.sampled_from(ACCOUNTS),
                           st.integers(1, 400), st.integers(0, 10)),
                 max_size=60)


@settings(max_examples=300, deadline=None)
@given(openings=st.tuples(*[st.integers(0, 500) for _ in ACCOUNTS]), steps=steps,
       near_limit=st.booleans())
def test_money_is_conserved_whatever_the_courier_does(
    openings: tuple[int, ...], steps: list[tuple[str, str, str, int, int]], near_limit: bool,
) -> None:
    logs = {name: Log(name) for name in ACCOUNTS}
    total = 0
    for name, opening in zip(ACCOUNTS, openings, strict=True):
        logs[name].apply(Operation(Kind.OPEN, opening, f"open-{name}"))
        total += opening
    if near_limit:  # c within 300 of the limit: credits to it bounce, refunds still apply
        room = MAX_BALANCE - 300 - openings[-1]
        for number in range(-(-room // MAX_AMOUNT)):
            amount = min(MAX_AMOUNT, room - number * MAX_AMOUNT)
            assert isinstance(logs["c"].apply(Operation(Kind.DEPOSIT, amount, f"fill-{number}")),
                              Applied)
            total += amount
    started: list[tuple[str, Pending]] = []  # every transfer debited: the courier's queue
    for number, (what, source, target, amount, pick) in enumerate(steps):
        rid = f"r{number}"
        if what == "deposit":
            verdict = logs[source].apply(Operation(Kind.DEPOSIT, amount, rid))
            total += amount if isinstance(verdict, Applied) else 0
        elif what == "withdraw":
            verdict = logs[source].apply(Operation(Kind.WITHDRAWAL, amount, rid))
            total -= amount if isinstance(verdict, Applied) else 0
        elif what == "transfer" and source != target:
            verdict = logs[source].apply(Operation(Kind.TRANSFER_OUT, amount, rid,
                                                   counterparty=target))
            if isinstance(verdict, Applied):
                started.append((source, Pending(rid, target, amount)))
        elif what == "deliver" and started:
            # Any transfer, any number of times: the credit, then its settlement or refund.
            deliver(logs, *started[pick % len(started)])
        assert sum(log.state.balance for log in logs.values()) + in_flight(logs) == total
        for log in logs.values():
            assert log.state.pending_out == sum(p.amount for p in log.pending.values())
    for source, transfer in started:  # the courier finishes everything
        deliver(logs, source, transfer)
    assert in_flight(logs) == 0
    assert all(not log.pending for log in logs.values())
    assert sum(log.state.balance for log in logs.values()) == total
    for log in logs.values():  # every log replays to the same state
        assert replay([[op] for op in log.entries])[0] == log.state


def deliver(logs: dict[str, Log], source: str, transfer: Pending) -> None:
    """What any node does for a transfer it finds pending: credit (again, harmlessly),
    then settle or refund as the credit was decided."""
    credit = Operation(Kind.TRANSFER_IN, transfer.amount, transfer.request_id,
                       counterparty=source)
    logs[transfer.to_account].apply(credit)
    decided = logs[transfer.to_account].credits[(source, transfer.request_id)]
    kind = Kind.TRANSFER_SETTLE if isinstance(decided, Applied) else Kind.TRANSFER_REFUND
    verdict = logs[source].apply(Operation(kind, transfer.amount, transfer.request_id,
                                           counterparty=transfer.to_account))
    if transfer.request_id in logs[source].pending:
        pytest.fail(f"{kind} left {transfer} pending: {verdict}")


def fill(log: Log, balance: int) -> None:
    """Deposit into an open account, in the largest amounts allowed, up to `balance`."""
    number = 0
    while log.state.balance < balance:
        amount = min(MAX_AMOUNT, balance - log.state.balance)
        assert isinstance(log.apply(Operation(Kind.DEPOSIT, amount, f"fill-{number}")), Applied)
        number += 1


def test_a_credit_that_would_pass_the_limit_bounces_and_the_refund_always_applies() -> None:
    source, target = Log("a"), Log("b")
    source.apply(Operation(Kind.OPEN, 0, "o"))
    target.apply(Operation(Kind.OPEN, 0, "o"))
    fill(source, MAX_BALANCE - 50)
    fill(target, MAX_BALANCE - 50)
    debit = source.apply(Operation(Kind.TRANSFER_OUT, 100, "t", counterparty="b"))
    assert isinstance(debit, Applied) and debit.balance == MAX_BALANCE - 150
    assert source.state.pending_out == 100
    # While the transfer is pending, the source cannot be filled past its limit: the
    # money may come back (without it, 60 more would fit).
    blocked = source.apply(Operation(Kind.DEPOSIT, 60, "d"))
    assert blocked == Refused(debit.position + 1, MAX_BALANCE - 150, Refusal.BALANCE_LIMIT)
    bounced = target.apply(Operation(Kind.TRANSFER_IN, 100, "t", counterparty="a"))
    assert isinstance(bounced, Refused) and bounced.reason is Refusal.BALANCE_LIMIT
    refund = source.apply(Operation(Kind.TRANSFER_REFUND, 100, "t"))
    assert refund == Applied(debit.position + 2, MAX_BALANCE - 50)
    assert source.state.pending_out == 0
    assert source.apply(Operation(Kind.TRANSFER_REFUND, 100, "t")) == NoOp(Skip.DUPLICATE)
    assert source.apply(Operation(Kind.TRANSFER_SETTLE, 100, "t")) == NoOp(Skip.NOT_PENDING)


def test_a_credit_is_keyed_apart_from_the_ids_clients_choose() -> None:
    target = Log("b")
    target.apply(Operation(Kind.OPEN, 0, "o"))
    # A client's deposit on b that happens to use the transfer's id swallows nothing.
    assert target.apply(Operation(Kind.DEPOSIT, 5, "t")) == Applied(1, 5)
    assert target.apply(Operation(Kind.TRANSFER_IN, 7, "t", counterparty="a")) == Applied(2, 12)
    # The same id from another source is another transfer; from the same, a duplicate.
    assert target.apply(Operation(Kind.TRANSFER_IN, 7, "t", counterparty="c")) == Applied(3, 19)
    assert target.apply(Operation(Kind.TRANSFER_IN, 7, "t", counterparty="a")) == NoOp(
        Skip.DUPLICATE)


def test_a_settlement_moves_no_money_and_takes_no_number() -> None:
    source = Log("a")
    source.apply(Operation(Kind.OPEN, 10, "o"))
    source.apply(Operation(Kind.TRANSFER_OUT, 4, "t", counterparty="b"))
    assert source.apply(Operation(Kind.TRANSFER_SETTLE, 4, "t")) == Settled(4)
    assert source.state == AccountState(True, 6, 2, 0)
    # An amount that is not the pending one's ends nothing.
    source.apply(Operation(Kind.TRANSFER_OUT, 3, "u", counterparty="b"))
    assert source.apply(Operation(Kind.TRANSFER_REFUND, 2, "u")) == NoOp(Skip.NOT_PENDING)
    assert source.state.pending_out == 3


def test_a_state_with_money_pending_past_the_limit_is_refused() -> None:
    with pytest.raises(ValueError, match="transfers"):
        AccountState(True, MAX_BALANCE, 1, 1)
    with pytest.raises(ValueError, match="transfers"):
        AccountState(True, 0, 1, -1)
