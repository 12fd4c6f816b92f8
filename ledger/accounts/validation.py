"""Request validation: what a well-formed request looks like, checked before anything is written."""

from __future__ import annotations

import re

from ledger.accounts.model import MAX_AMOUNT
from ledger.errors import InvalidRequest

ACCOUNT_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
REQUEST_ID = re.compile(r"[\x20-\x7e]{1,64}")
MAX_MEMO_CHARS = 200
DEFAULT_PAGE = 100
MAX_PAGE = 1_000
#: Operations in one batch (a Submit, or one message of a write stream), counting each.
MAX_BATCH_OPERATIONS = 10_000


def check_account_id(account_id: str) -> str:
    if not ACCOUNT_ID.fullmatch(account_id):
        raise InvalidRequest(
            f"account id {account_id!r} must be 1-64 characters of letters, digits, '.', '_', '-'"
        )
    return account_id


def check_request_id(request_id: str) -> str:
    if not REQUEST_ID.fullmatch(request_id):
        raise InvalidRequest(
            f"request id {request_id!r} must be 1-64 printable ASCII characters "
            "(it is required: it makes retries safe)"
        )
    return request_id


def check_amount(amount: int) -> int:
    if not 1 <= amount <= MAX_AMOUNT:
        raise InvalidRequest(f"amount {amount} must be between 1 and {MAX_AMOUNT} minor units")
    return amount


def check_opening_balance(amount: int) -> int:
    if not 0 <= amount <= MAX_AMOUNT:
        raise InvalidRequest(
            f"opening balance {amount} must be between 0 and {MAX_AMOUNT} minor units"
        )
    return amount


def check_memo(memo: str) -> str:
    if len(memo) > MAX_MEMO_CHARS:
        raise InvalidRequest(f"memo is {len(memo)} characters; at most {MAX_MEMO_CHARS}")
    return memo


def check_page(limit: int) -> int:
    """A page size: 0 means the default; more than the maximum is an error."""
    if limit == 0:
        return DEFAULT_PAGE
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidRequest(f"limit {limit} must be between 0 (default {DEFAULT_PAGE}) "
                             f"and {MAX_PAGE}")
    return limit
