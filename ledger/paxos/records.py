"""What the core asks storage to make durable, and how it reads durable state back.

The core never writes: it returns `Write` records in a `Ready`, and the driver
stages them in a `DurableView` implementation and syncs them to disk before it
sends any message of that `Ready` (or of a later one). Reads see staged writes
at once, so the core's view of its own state never goes backwards.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from ledger.paxos.ballot import Ballot
from ledger.paxos.messages import AcceptedEntry, AccountTail


@dataclass(frozen=True, slots=True)
class PromiseWrite:
    """The acceptor promised `ballot` for every slot of `account`."""

    account: str
    ballot: Ballot


@dataclass(frozen=True, slots=True)
class AcceptWrite:
    """The acceptor accepted `value` at `slot` under `ballot`."""

    account: str
    slot: int
    ballot: Ballot
    value: bytes


@dataclass(frozen=True, slots=True)
class ChosenWrite:
    """`value` is chosen at `slot`, the next slot of the chosen prefix.

    It supersedes the acceptor's vote at that slot, which storage may drop.
    """

    account: str
    slot: int
    value: bytes


@dataclass(frozen=True, slots=True)
class RoundWrite:
    """The proposer may use rounds up to `reserved_round`; a restart resumes above it."""

    reserved_round: int


@dataclass(frozen=True, slots=True)
class FenceWrite:
    """A rejoining node may not vote at undecided slots <= `slot` of `account`.

    Written by `ledger recover` (never by the core): `slot` is the highest slot at
    which another member held a vote or a chosen value when this node rejoined, so a
    vote this node lost there may be half of a chosen quorum. The node takes part
    in those slots again only once it has learned what was chosen.
    """

    account: str
    slot: int


@dataclass(frozen=True, slots=True)
class FloorWrite:
    """A rejoining node never promises, accepts or proposes at a round <= `round`.

    Written by `ledger recover`: the highest round any other member had promised or
    accepted, so no ballot that counted a promise this node lost can use it again.
    """

    round: int


Write = PromiseWrite | AcceptWrite | ChosenWrite | RoundWrite | FenceWrite | FloorWrite


@dataclass(frozen=True, slots=True)
class AccountRecord:
    """An account's acceptor and learner state as storage holds it."""

    promised: Ballot
    chosen_through: int
    accepted: tuple[AcceptedEntry, ...]  # votes at slots > chosen_through, sorted
    fence_slot: int = -1  # no votes at undecided slots up to here (see FenceWrite)


class DurableView(Protocol):
    """Read access to the node's durable state (staged writes included)."""

    def reserved_round(self) -> int:
        """The highest round the proposer may have used (0 on a new node)."""
        ...

    def round_floor(self) -> int:
        """No promise, vote or ballot of this node at or below this round (see FloorWrite)."""
        ...

    def account_record(self, account: str) -> AccountRecord:
        """The account's promise, chosen prefix and undecided votes (empty if unknown)."""
        ...

    def chosen_values(self, account: str, from_slot: int, limit: int) -> Sequence[bytes]:
        """Chosen values from `from_slot` on, contiguous, at most `limit`."""
        ...

    def account_tails(self, after: str, limit: int) -> Sequence[AccountTail]:
        """Accounts sorted after `after` with their chosen prefix, at most `limit`."""
        ...

    def accounts_with_votes(self) -> Sequence[str]:
        """Accounts holding a vote at a slot above their chosen prefix."""
        ...
