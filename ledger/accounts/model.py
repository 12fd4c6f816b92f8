"""Operations, account state and verdicts: immutable values, money in integer minor units."""

from __future__ import annotations

import enum
from dataclasses import dataclass

MAX_AMOUNT = 10**15  # largest deposit, withdrawal or opening balance, in minor units
MAX_BALANCE = 10**18  # no balance may exceed this


class Kind(enum.Enum):
    """What an operation does; the one operation-kind enum, from the API to the log."""

    OPEN = "open"
    DEPOSIT = "deposit"
    WITHDRAWAL = "withdrawal"

    @classmethod
    def parse(cls, text: str) -> Kind:
        """The kind a person, a file or a client names: open, deposit, withdrawal or withdraw."""
        kind = _KIND_NAMES.get(text.strip().lower())
        if kind is None:
            raise ValueError(f"{text!r} is not a kind of write: open, deposit or withdraw")
        return kind


# "withdraw" is the verb the API and the teller use for a withdrawal.
_KIND_NAMES = {**{kind.value: kind for kind in Kind}, "withdraw": Kind.WITHDRAWAL}


@dataclass(frozen=True, slots=True)
class Operation:
    """One client request as it goes into the log. For OPEN, `amount` is the opening balance."""

    kind: Kind
    amount: int
    request_id: str
    memo: str = ""
    recorded_at_ms: int = 0  # the proposing node's wall clock; informational only
    principal: str = ""  # who asked (a certificate's name); "" if written before principals


@dataclass(frozen=True, slots=True)
class WriteRequest:
    """A client's write to one account, as asked (not yet validated)."""

    kind: Kind
    account_id: str
    amount: int  # the opening balance for OPEN
    request_id: str  # the idempotency key: a retry with the same id never applies twice
    memo: str = ""
    principal: str = ""  # who asked: the authenticated caller's name, never a client's field


@dataclass(frozen=True, slots=True)
class AccountState:
    """An account after applying a prefix of its log."""

    opened: bool = False
    balance: int = 0
    operations: int = 0  # operations numbered so far; the next one's position

    def __post_init__(self) -> None:
        # Explicit raises, not asserts: states are also decoded from disk.
        if not 0 <= self.balance <= MAX_BALANCE:
            raise ValueError(f"balance {self.balance}: never negative nor past {MAX_BALANCE}")
        if not self.opened and (self.balance != 0 or self.operations != 0):
            raise ValueError("an account that is not open has no balance and no operations")


class Refusal(enum.Enum):
    INSUFFICIENT_FUNDS = "insufficient funds"
    BALANCE_LIMIT = "balance limit"


class Skip(enum.Enum):
    DUPLICATE = "request id already decided earlier in the log"
    ALREADY_OPEN = "account already open"
    NOT_OPEN = "account not open"


@dataclass(frozen=True, slots=True)
class Applied:
    """The operation took effect: it is operation number `position`."""

    position: int
    balance: int


@dataclass(frozen=True, slots=True)
class Refused:
    """The operation was decided and refused: operation `position`, balance unchanged."""

    position: int
    balance: int
    reason: Refusal


@dataclass(frozen=True, slots=True)
class NoOp:
    """The log entry carries the operation but it has no effect and no number."""

    reason: Skip


Verdict = Applied | Refused | NoOp
