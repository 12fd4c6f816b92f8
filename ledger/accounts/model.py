"""Operations, account state and verdicts: immutable values, money in integer minor units."""

from __future__ import annotations

import enum
from dataclasses import dataclass

MAX_AMOUNT = 10**15  # largest deposit, withdrawal or opening balance, in minor units
MAX_BALANCE = 10**18  # no balance may exceed this


class Kind(enum.Enum):
    """What an operation does; the one operation-kind enum, from the API to the log.

    A transfer from A to B is three or four operations in two logs (Megastore's
    transactional queue): TRANSFER_OUT in A's log debits A and leaves the transfer
    pending there; TRANSFER_IN in B's log credits B (or bounces, refused, when B
    would pass the balance limit); then in A's log TRANSFER_SETTLE (the credit was
    delivered) or TRANSFER_REFUND (it bounced: the money goes back) ends it.
    """

    OPEN = "open"
    DEPOSIT = "deposit"
    WITHDRAWAL = "withdrawal"
    TRANSFER_OUT = "transfer_out"
    TRANSFER_IN = "transfer_in"
    TRANSFER_REFUND = "transfer_refund"
    TRANSFER_SETTLE = "transfer_settle"

    @classmethod
    def parse(cls, text: str) -> Kind:
        """The kind a person, a file or a client names: open, deposit, withdrawal (or
        withdraw) or transfer (the rest are the ledger's own)."""
        kind = _KIND_NAMES.get(text.strip().lower())
        if kind is None:
            raise ValueError(f"{text!r} is not a kind of write: open, deposit, withdraw or "
                             "transfer")
        return kind

    @property
    def in_transfer(self) -> bool:
        """One of a transfer's operations (they name the other account)."""
        return self in (Kind.TRANSFER_OUT, Kind.TRANSFER_IN, Kind.TRANSFER_REFUND,
                        Kind.TRANSFER_SETTLE)

    @property
    def ends_transfer(self) -> bool:
        """Settles or refunds a pending transfer (no request record: the pending one is it)."""
        return self in (Kind.TRANSFER_REFUND, Kind.TRANSFER_SETTLE)


# "withdraw" is the verb the API and the teller use for a withdrawal, "transfer" for the
# debit that starts a transfer.
# (Every kind a client may ask for parses from its own value too.)
_KIND_NAMES = {"open": Kind.OPEN, "deposit": Kind.DEPOSIT, "withdrawal": Kind.WITHDRAWAL,
               "withdraw": Kind.WITHDRAWAL, "transfer": Kind.TRANSFER_OUT,
               "transfer_out": Kind.TRANSFER_OUT}


@dataclass(frozen=True, slots=True)
class Operation:
    """One client request as it goes into the log. For OPEN, `amount` is the opening balance."""

    kind: Kind
    amount: int
    request_id: str
    memo: str = ""
    recorded_at_ms: int = 0  # the proposing node's wall clock; informational only
    principal: str = ""  # who asked (a certificate's name); "" if written before principals
    counterparty: str = ""  # a transfer's other account; "" for every other kind
    # TRANSFER_IN: its debit's slot in the source's log; TRANSFER_SETTLE: its credit's slot
    # in the destination's (0 for every other kind: no debit or credit sits at slot 0, the
    # open's). A replica applies the operation only once it has applied that slot, so
    # its applied state is always a consistent cut: no credit without its debit.
    counterparty_slot: int = 0


@dataclass(frozen=True, slots=True)
class WriteRequest:
    """A client's write to one account, as asked (not yet validated)."""

    kind: Kind
    account_id: str
    amount: int  # the opening balance for OPEN
    request_id: str  # the idempotency key: a retry with the same id never applies twice
    memo: str = ""
    principal: str = ""  # who asked: the authenticated caller's name, never a client's field
    counterparty: str = ""  # TRANSFER_OUT: the account credited


@dataclass(frozen=True, slots=True)
class AccountState:
    """An account after applying a prefix of its log."""

    opened: bool = False
    balance: int = 0
    operations: int = 0  # operations numbered so far; the next one's position
    # Money this account sent whose transfers are not settled or refunded yet. It is
    # kept under the balance limit with the balance, so a refund can never bounce.
    pending_out: int = 0

    def __post_init__(self) -> None:
        # Explicit raises, not asserts: states are also decoded from disk.
        if not 0 <= self.balance <= MAX_BALANCE:
            raise ValueError(f"balance {self.balance}: never negative nor past {MAX_BALANCE}")
        if not 0 <= self.pending_out <= MAX_BALANCE - self.balance:
            raise ValueError(f"money in transfers {self.pending_out} with balance "
                             f"{self.balance}: never negative, and together within "
                             f"{MAX_BALANCE}")
        if not self.opened and (self.balance or self.operations or self.pending_out):
            raise ValueError("an account that is not open has no balance and no operations")

    @property
    def room(self) -> int:
        """How much more money the account can take in (its pending transfers may come
        back)."""
        return MAX_BALANCE - self.balance - self.pending_out


class Refusal(enum.Enum):
    INSUFFICIENT_FUNDS = "insufficient funds"
    BALANCE_LIMIT = "balance limit"


class Skip(enum.Enum):
    DUPLICATE = "request id already decided earlier in the log"
    ALREADY_OPEN = "account already open"
    NOT_OPEN = "account not open"
    NOT_PENDING = "no such transfer pending"  # settled or refunded already


@dataclass(frozen=True, slots=True)
class Pending:
    """A transfer this account sent, debited and not settled or refunded yet."""

    request_id: str
    to_account: str
    amount: int
    memo: str = ""  # the transfer's, for its credit and refund
    principal: str = ""  # who asked for it, recorded with its credit and refund too
    debit_slot: int = 0  # where the debit sits in the source's log (its credit follows it)


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
class Settled:
    """The transfer's credit was delivered: it is no longer pending (no number, no
    money moved here)."""

    amount: int


@dataclass(frozen=True, slots=True)
class NoOp:
    """The log entry carries the operation but it has no effect and no number."""

    reason: Skip


Verdict = Applied | Refused | Settled | NoOp
