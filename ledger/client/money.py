"""Money as people type it (12.34) <-> integer minor units (1234). No floats anywhere."""

from __future__ import annotations

import re

from ledger.accounts import MAX_AMOUNT

MINOR_DIGITS = 2
# ASCII digits only: `\d` would also take fullwidth or Arabic-Indic digits, which no teller
# means to type and which int() would quietly accept.
_AMOUNT = re.compile(r"([0-9]+)(?:\.([0-9]{1,2}))?")
# More significant digits than this cannot be an allowed amount; checked before int() so
# that a pasted wall of digits is a BadAmount, not int()'s own digit-limit ValueError.
_MAX_UNIT_DIGITS = len(str(MAX_AMOUNT // 10**MINOR_DIGITS))


class BadAmount(ValueError):
    """The text is not an amount of money; the message says what is expected."""


def parse_amount(text: str, allow_zero: bool = False) -> int:
    """Parse '12.34', '100', '0.05' into minor units, exactly.

    Refuses signs, exponents, more than two decimals, separators and anything else
    that is not plainly an amount; zero only when `allow_zero` (an opening balance).
    Surrounding blanks are ignored.
    """
    shown = repr(text) if len(text) <= 40 else repr(text[:30]) + "..."
    match = _AMOUNT.fullmatch(text.strip())
    if match is None:
        raise BadAmount(f"{shown} is not an amount: write it like 12.34, 100 or 0.05")
    units, cents = match.group(1).lstrip("0"), (match.group(2) or "").ljust(MINOR_DIGITS, "0")
    too_large = BadAmount(f"{shown}: the amount may be at most {format_amount(MAX_AMOUNT)}")
    if len(units) > _MAX_UNIT_DIGITS:
        raise too_large
    minor = int(units or "0") * 10**MINOR_DIGITS + int(cents)
    if minor == 0 and not allow_zero:
        raise BadAmount(f"{shown}: the amount must be more than zero")
    if minor > MAX_AMOUNT:
        raise too_large
    return minor


def format_amount(minor: int) -> str:
    """1234 -> '12.34'; -5 -> '-0.05'."""
    sign = "-" if minor < 0 else ""
    units, cents = divmod(abs(minor), 10**MINOR_DIGITS)
    return f"{sign}{units}.{cents:0{MINOR_DIGITS}d}"
