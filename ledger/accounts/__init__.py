"""The accounts domain: pure rules for opening, depositing, withdrawing, transferring
and replaying.

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
    Pending,
    Refusal,
    Refused,
    Settled,
    Verdict,
    WriteRequest,
)
from ledger.accounts.rules import (
    DecisionKey,
    apply_operation,
    decision_key,
    note_pending,
    replay,
    same_request,
)

__all__ = [
    "MAX_AMOUNT",
    "MAX_BALANCE",
    "AccountState",
    "Applied",
    "DecisionKey",
    "Kind",
    "NoOp",
    "Operation",
    "Pending",
    "Refusal",
    "Refused",
    "Settled",
    "Verdict",
    "WriteRequest",
    "apply_operation",
    "decision_key",
    "note_pending",
    "replay",
    "same_request",
]
