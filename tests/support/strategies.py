"""Hypothesis strategies for the accounts domain: operations, whole logs, account states."""

from __future__ import annotations

from hypothesis import strategies as st

from ledger.accounts import MAX_AMOUNT, MAX_BALANCE, AccountState, Kind, Operation

# A handful of request ids, so that reuse (the interesting case) is frequent.
request_ids = st.sampled_from([f"r{i}" for i in range(8)])
memos = st.sampled_from(["", "salary", "rent"])
# "": recorded before principals were (or written inside the node).
principals = st.sampled_from(["", "anonymous", "alice@bank.example", "n1"])
# Small amounts make refusals and exact-zero balances likely; huge ones exercise the bounds.
amounts = st.one_of(st.integers(1, 200), st.integers(1, MAX_AMOUNT))
opening_balances = st.one_of(st.integers(0, 200), st.integers(0, MAX_AMOUNT))


@st.composite
def operations(draw: st.DrawFn) -> Operation:
    kind = draw(st.sampled_from([Kind.DEPOSIT, Kind.WITHDRAWAL, Kind.DEPOSIT, Kind.WITHDRAWAL,
                                 Kind.OPEN]))
    amount = draw(opening_balances if kind is Kind.OPEN else amounts)
    memo = "" if kind is Kind.OPEN else draw(memos)
    return Operation(kind, amount, draw(request_ids), memo, draw(st.integers(0, 2**40)),
                     draw(principals))


@st.composite
def logs(draw: st.DrawFn) -> list[list[Operation]]:
    """An account's log: usually an open first, then entries of one or more operations."""
    entries: list[list[Operation]] = []
    if draw(st.integers(0, 3)):
        entries.append([Operation(Kind.OPEN, draw(opening_balances), draw(request_ids))])
    entries.extend(draw(st.lists(st.lists(operations(), min_size=1, max_size=4), max_size=25)))
    return entries


@st.composite
def open_states(draw: st.DrawFn) -> AccountState:
    """Any state an open account can be in, including right at the balance limit."""
    balance = draw(st.one_of(st.integers(0, 300), st.integers(0, MAX_BALANCE),
                             st.integers(MAX_BALANCE - MAX_AMOUNT, MAX_BALANCE)))
    return AccountState(True, balance, draw(st.integers(1, 10**6)))
