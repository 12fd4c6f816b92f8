"""Property-based tests of the accounts domain (`ledger.accounts`): pure rules, no I/O."""

from __future__ import annotations

import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.accounts import (
    MAX_AMOUNT,
    MAX_BALANCE,
    AccountState,
    Applied,
    Kind,
    NoOp,
    Operation,
    Refusal,
    Refused,
    Verdict,
    apply_operation,
    replay,
    same_request,
)
from ledger.accounts.model import Skip
from ledger.accounts.validation import (
    DEFAULT_PAGE,
    MAX_MEMO_CHARS,
    MAX_PAGE,
    check_account_id,
    check_amount,
    check_memo,
    check_opening_balance,
    check_page,
    check_request_id,
)
from ledger.errors import InvalidRequest
from tests.support.strategies import amounts, logs, open_states, operations, request_ids


def flatten(entries: list[list[Operation]]) -> list[Operation]:
    return [operation for entry in entries for operation in entry]


def paired(entries: list[list[Operation]]) -> tuple[AccountState, list[tuple[Operation, Verdict]]]:
    state, verdicts = replay(entries)
    operations_ = flatten(entries)
    assert len(verdicts) == len(operations_), "one verdict per operation"
    return state, list(zip(operations_, verdicts, strict=True))


# ---------------------------------------------------------------- replay

@given(logs())
def test_replay_is_deterministic(entries: list[list[Operation]]) -> None:
    copy = [list(entry) for entry in entries]
    assert replay(entries) == replay(copy)
    # How operations are packed into log entries does not change any verdict.
    assert replay(entries) == replay([[op] for op in flatten(entries)])


@given(logs())
def test_the_balance_is_never_negative_nor_past_the_limit(entries: list[list[Operation]]) -> None:
    state = AccountState()
    decided: set[str] = set()
    for operation in flatten(entries):
        state, verdict = apply_operation(state, operation, operation.request_id in decided)
        if not isinstance(verdict, NoOp):
            decided.add(operation.request_id)
            assert 0 <= verdict.balance <= MAX_BALANCE
        assert 0 <= state.balance <= MAX_BALANCE
    assert state == replay(entries)[0]


@given(logs())
def test_conservation(entries: list[list[Operation]]) -> None:
    state, pairs = paired(entries)
    opening = sum(op.amount for op, v in pairs if op.kind is Kind.OPEN and isinstance(v, Applied))
    deposits = sum(op.amount for op, v in pairs
                   if op.kind is Kind.DEPOSIT and isinstance(v, Applied))
    withdrawals = sum(op.amount for op, v in pairs
                      if op.kind is Kind.WITHDRAWAL and isinstance(v, Applied))
    assert state.balance == opening + deposits - withdrawals
    # And each applied verdict's balance is the running total at that point.
    running = 0
    for op, verdict in pairs:
        if isinstance(verdict, Applied):
            running += -op.amount if op.kind is Kind.WITHDRAWAL else op.amount
            assert verdict.balance == running
        elif isinstance(verdict, Refused):
            assert verdict.balance == running, "a refusal moves no money"


@given(logs())
def test_the_first_operation_with_a_request_id_decides_it(entries: list[list[Operation]]) -> None:
    _, pairs = paired(entries)
    deciding: dict[str, Verdict] = {}
    for op, verdict in pairs:
        if op.request_id in deciding:
            assert verdict == NoOp(Skip.DUPLICATE), f"{op.request_id} decided twice"
        elif not isinstance(verdict, NoOp):
            deciding[op.request_id] = verdict
    # Replaying the log again, or with the later copies removed, decides the same.
    first_only: list[Operation] = []
    seen: set[str] = set()
    for op, verdict in pairs:
        if not isinstance(verdict, NoOp):
            assert op.request_id not in seen
            seen.add(op.request_id)
            first_only.append(op)
    state, verdicts = replay([first_only])
    assert state == replay(entries)[0]
    assert verdicts == [v for _, v in pairs if not isinstance(v, NoOp)]


@given(logs())
def test_positions_are_numbered_without_gaps(entries: list[list[Operation]]) -> None:
    state, pairs = paired(entries)
    numbered = [v for _, v in pairs if isinstance(v, Applied | Refused)]
    assert [v.position for v in numbered] == list(range(len(numbered)))
    assert state.operations == len(numbered)
    assert state.opened == bool(numbered)
    if numbered:  # operation 0 is always the opening
        first = next(op for op, v in pairs if not isinstance(v, NoOp))
        assert first.kind is Kind.OPEN and isinstance(numbered[0], Applied)


@given(logs())
def test_nothing_counts_before_the_open_and_a_second_open_is_a_no_op(
    entries: list[list[Operation]],
) -> None:
    _, pairs = paired(entries)
    opened = False
    for op, verdict in pairs:
        if isinstance(verdict, NoOp) and verdict.reason is Skip.DUPLICATE:
            continue
        if not opened:
            assert (op.kind is Kind.OPEN) == (not isinstance(verdict, NoOp))
            if op.kind is not Kind.OPEN:
                assert verdict == NoOp(Skip.NOT_OPEN)
            opened = op.kind is Kind.OPEN
        elif op.kind is Kind.OPEN:
            assert verdict == NoOp(Skip.ALREADY_OPEN)


# ---------------------------------------------------------------- one operation

@given(open_states(), amounts, request_ids)
def test_a_withdrawal_succeeds_exactly_when_it_is_covered(
    state: AccountState, amount: int, request_id: str,
) -> None:
    after, verdict = apply_operation(state, Operation(Kind.WITHDRAWAL, amount, request_id), False)
    assert after.operations == state.operations + 1
    if amount <= state.balance:
        assert verdict == Applied(state.operations, state.balance - amount)
        assert after.balance == state.balance - amount
    else:
        assert verdict == Refused(state.operations, state.balance, Refusal.INSUFFICIENT_FUNDS)
        assert after.balance == state.balance


@given(open_states(), amounts, request_ids)
def test_a_deposit_is_refused_exactly_when_it_passes_the_limit(
    state: AccountState, amount: int, request_id: str,
) -> None:
    after, verdict = apply_operation(state, Operation(Kind.DEPOSIT, amount, request_id), False)
    assert after.operations == state.operations + 1
    if state.balance + amount <= MAX_BALANCE:
        assert verdict == Applied(state.operations, state.balance + amount)
    else:
        assert verdict == Refused(state.operations, state.balance, Refusal.BALANCE_LIMIT)
        assert after.balance == state.balance


@given(open_states(), operations())
def test_an_already_decided_request_changes_nothing(
    state: AccountState, operation: Operation,
) -> None:
    assert apply_operation(state, operation, True) == (state, NoOp(Skip.DUPLICATE))


def test_a_withdrawal_may_empty_the_account_exactly() -> None:
    state, verdicts = replay([[Operation(Kind.OPEN, 50, "o")],
                              [Operation(Kind.WITHDRAWAL, 50, "w")],
                              [Operation(Kind.WITHDRAWAL, 1, "x")]])
    assert verdicts == [Applied(0, 50), Applied(1, 0),
                        Refused(2, 0, Refusal.INSUFFICIENT_FUNDS)]
    assert state == AccountState(True, 0, 3)


def test_the_balance_may_reach_the_limit_exactly() -> None:
    state = AccountState(True, MAX_BALANCE - 5, 7)
    state, verdict = apply_operation(state, Operation(Kind.DEPOSIT, 5, "d"), False)
    assert verdict == Applied(7, MAX_BALANCE)
    state, verdict = apply_operation(state, Operation(Kind.DEPOSIT, 1, "e"), False)
    assert verdict == Refused(8, MAX_BALANCE, Refusal.BALANCE_LIMIT)


@given(operations(), operations())
def test_same_request_compares_kind_amount_and_memo_only(first: Operation,
                                                         second: Operation) -> None:
    expected = (first.kind, first.amount, first.memo) == (second.kind, second.amount, second.memo)
    assert same_request(first, second) == expected
    assert same_request(first, Operation(first.kind, first.amount, "other", first.memo, 12345))


# ---------------------------------------------------------------- validation

ID_CHARS = string.ascii_letters + string.digits + "._-"


@given(st.text(alphabet=ID_CHARS, min_size=1, max_size=64))
def test_good_account_ids_pass(account_id: str) -> None:
    assert check_account_id(account_id) == account_id


@given(st.one_of(
    st.just(""),
    st.text(alphabet=ID_CHARS, min_size=65, max_size=80),
    st.tuples(st.text(alphabet=ID_CHARS, max_size=10),
              st.characters().filter(lambda c: c not in ID_CHARS),
              st.text(alphabet=ID_CHARS, max_size=10)).map("".join),
))
def test_bad_account_ids_are_invalid(account_id: str) -> None:
    with pytest.raises(InvalidRequest, match="account id"):
        check_account_id(account_id)


@given(st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1,
               max_size=64))
def test_printable_ascii_request_ids_pass(request_id: str) -> None:
    assert check_request_id(request_id) == request_id


@pytest.mark.parametrize("request_id", ["", "x" * 65, "tab\there", "new\nline", "caf\u00e9",
                                        "nul\x00", "del\x7f", "r\n"])
def test_bad_request_ids_are_invalid(request_id: str) -> None:
    with pytest.raises(InvalidRequest, match="request id"):
        check_request_id(request_id)


@given(st.integers(-(2**63), 2**63 - 1))
def test_amount_and_opening_balance_bounds(amount: int) -> None:
    if 1 <= amount <= MAX_AMOUNT:
        assert check_amount(amount) == amount
    else:
        with pytest.raises(InvalidRequest, match="amount"):
            check_amount(amount)
    if 0 <= amount <= MAX_AMOUNT:
        assert check_opening_balance(amount) == amount
    else:
        with pytest.raises(InvalidRequest, match="opening balance"):
            check_opening_balance(amount)


def test_memo_and_page_bounds() -> None:
    assert check_memo("m" * MAX_MEMO_CHARS) == "m" * MAX_MEMO_CHARS
    with pytest.raises(InvalidRequest, match="memo"):
        check_memo("m" * (MAX_MEMO_CHARS + 1))
    assert check_page(0) == DEFAULT_PAGE
    assert check_page(1) == 1
    assert check_page(MAX_PAGE) == MAX_PAGE
    with pytest.raises(InvalidRequest, match="limit"):
        check_page(MAX_PAGE + 1)
