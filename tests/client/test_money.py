"""Amounts as people type them <-> integer minor units: exact, strict, no floats."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.accounts.model import MAX_AMOUNT
from ledger.client.money import BadAmount, format_amount, parse_amount


@pytest.mark.parametrize(("text", "minor"), [
    ("12.34", 1234),
    ("100", 10_000),
    ("0.05", 5),
    ("0.5", 50),
    ("12.3", 1230),
    ("1", 100),
    ("0.01", 1),
    ("007.10", 710),
    (" 12.34 ", 1234),  # blanks around are forgiven; nothing inside is
    ("10000000000000", MAX_AMOUNT),
    ("10000000000000.00", MAX_AMOUNT),
    ("9999999999999.99", MAX_AMOUNT - 1),
])
def test_amounts_convert_exactly(text: str, minor: int) -> None:
    assert parse_amount(text) == minor


@pytest.mark.parametrize(("text", "why"), [
    ("-5", "not an amount"),  # no signs: deposit and withdraw say the direction
    ("+5", "not an amount"),
    ("-0", "not an amount"),
    ("0", "more than zero"),
    ("0.00", "more than zero"),
    ("1.234", "not an amount"),  # a third decimal is a typo, never silently rounded
    ("1.000", "not an amount"),
    ("1e3", "not an amount"),
    ("1E3", "not an amount"),
    ("abc", "not an amount"),
    ("1,000", "not an amount"),  # a thousands separator or a decimal comma: ambiguous
    ("12,34", "not an amount"),
    ("1_000", "not an amount"),  # int() would take it
    ("1 000", "not an amount"),
    ("12.", "not an amount"),  # half-typed: 12.00? 12.50? ask again
    (".5", "not an amount"),
    ("", "not an amount"),
    (" ", "not an amount"),
    ("nan", "not an amount"),
    ("inf", "not an amount"),
    ("0x10", "not an amount"),
    ("$5", "not an amount"),
    ("5 EUR", "not an amount"),
    ("\uff11\uff12", "not an amount"),  # fullwidth digits: int() would take them
    ("\u0661\u0662", "not an amount"),  # Arabic-Indic digits: likewise
    ("10000000000000.01", "at most 10000000000000.00"),
    ("10000000000001", "at most 10000000000000.00"),
    ("1" * 5_000, "at most"),  # past int()'s digit limit: still a BadAmount
])
def test_bad_amounts_are_refused_with_a_reason(text: str, why: str) -> None:
    with pytest.raises(BadAmount, match=why) as refused:
        parse_amount(text)
    message = str(refused.value)
    assert "\n" not in message and len(message) < 120


def test_zero_is_an_opening_balance_but_not_a_deposit() -> None:
    assert parse_amount("0", allow_zero=True) == 0
    assert parse_amount("0.00", allow_zero=True) == 0
    with pytest.raises(BadAmount):
        parse_amount("-0", allow_zero=True)
    with pytest.raises(BadAmount, match="at most"):
        parse_amount("10000000000000.01", allow_zero=True)


@pytest.mark.parametrize(("minor", "text"), [
    (0, "0.00"), (5, "0.05"), (50, "0.50"), (1234, "12.34"), (10_000, "100.00"),
    (-5, "-0.05"), (-1234, "-12.34"), (MAX_AMOUNT, "10000000000000.00"),
])
def test_format_amount(minor: int, text: str) -> None:
    assert format_amount(minor) == text


@given(st.integers(min_value=0, max_value=MAX_AMOUNT))
def test_format_then_parse_gives_the_integer_back(minor: int) -> None:
    assert parse_amount(format_amount(minor), allow_zero=True) == minor


@given(st.integers(min_value=1, max_value=MAX_AMOUNT // 100), st.integers(0, 99))
def test_units_and_cents_parse_exactly(units: int, cents: int) -> None:
    minor = units * 100 + cents
    if minor <= MAX_AMOUNT:
        assert parse_amount(f"{units}.{cents:02d}") == minor
        assert format_amount(parse_amount(f"{units}.{cents:02d}")) == f"{units}.{cents:02d}"


@given(st.text(max_size=30))
def test_any_text_is_an_amount_in_range_or_a_bad_amount(text: str) -> None:
    try:
        minor = parse_amount(text)
    except BadAmount:
        return
    assert isinstance(minor, int) and 1 <= minor <= MAX_AMOUNT
