"""The accounts domain: pure rules for opening, depositing, withdrawing and replaying.

No I/O, no clock, no randomness: every replica applying the same log computes the
same balances and the same verdicts.
"""

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
    Verdict,
    WriteRequest,
)
from ledger.accounts.rules import apply_operation, replay, same_request

__all__ = [
    "MAX_AMOUNT",
    "MAX_BALANCE",
    "AccountState",
    "Applied",
    "Kind",
    "NoOp",
    "Operation",
    "Refusal",
    "Refused",
    "Verdict",
    "WriteRequest",
    "apply_operation",
    "replay",
    "same_request",
]
