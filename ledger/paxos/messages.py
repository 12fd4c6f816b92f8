"""Messages exchanged between Paxos nodes: immutable, hashable, I/O-free.

Every message names one account; the transport may pack many of them (many
positions, many accounts) into one network call.
"""

from __future__ import annotations

from dataclasses import dataclass

from ledger.paxos.ballot import Ballot


@dataclass(frozen=True, slots=True)
class AcceptedEntry:
    """An acceptor's vote: it accepted `value` at `position` under `ballot`."""

    position: int
    ballot: Ballot
    value: bytes


@dataclass(frozen=True, slots=True)
class Prepare:
    """Phase 1a: promise `ballot` for every position >= `from_position` of `account`."""

    account: str
    from_position: int
    ballot: Ballot


@dataclass(frozen=True, slots=True)
class Promise:
    """Phase 1b: the acceptor promised `ballot` for every position >= `from_position`.

    `accepted` holds every vote the acceptor has cast at an undecided position
    >= `from_position`. Positions the acceptor already knows to be chosen are
    reported as `chosen` values instead (contiguous from `from_position`, at most
    a configured number); `chosen_through` is the end of its chosen prefix.
    """

    account: str
    from_position: int
    ballot: Ballot
    accepted: tuple[AcceptedEntry, ...]
    chosen: tuple[bytes, ...]
    chosen_through: int


@dataclass(frozen=True, slots=True)
class Accept:
    """Phase 2a: accept `value` at `position` under `ballot`."""

    account: str
    position: int
    ballot: Ballot
    value: bytes


@dataclass(frozen=True, slots=True)
class Accepted:
    """Phase 2b: the acceptor accepted the proposer's value at `position` under `ballot`."""

    account: str
    position: int
    ballot: Ballot


@dataclass(frozen=True, slots=True)
class Nack:
    """A Prepare or Accept under `ballot` was refused: the acceptor promised `promised`."""

    account: str
    position: int
    ballot: Ballot
    promised: Ballot
    chosen_through: int


@dataclass(frozen=True, slots=True)
class Learn:
    """`value` is chosen at `position` of `account` (sent by a node that knows)."""

    account: str
    position: int
    value: bytes


@dataclass(frozen=True, slots=True)
class CatchUpRequest:
    """What is chosen at `account` from `from_position` on (at most `limit` values)?"""

    account: str
    from_position: int
    limit: int


@dataclass(frozen=True, slots=True)
class CatchUpReply:
    """The chosen values at `from_position`, `from_position + 1`, ... as far as known."""

    account: str
    from_position: int
    values: tuple[bytes, ...]
    chosen_through: int


@dataclass(frozen=True, slots=True)
class TailQuery:
    """Read barrier: how far do your chosen prefix and your votes on `account` reach?"""

    account: str
    nonce: int  # names the barrier round the answer belongs to


@dataclass(frozen=True, slots=True)
class TailReport:
    """The answer to a TailQuery: chosen prefix end and highest voted position (-1: none)."""

    account: str
    nonce: int
    chosen_through: int
    highest_vote: int


@dataclass(frozen=True, slots=True)
class AccountTail:
    """An account and the end of the sender's chosen prefix for it."""

    account: str
    chosen_through: int


@dataclass(frozen=True, slots=True)
class TailsRequest:
    """Anti-entropy: list the accounts you know after `after` (sorted), at most `limit`."""

    after: str
    limit: int


@dataclass(frozen=True, slots=True)
class TailsReply:
    """Accounts after `after` with their chosen prefixes; `complete` when none follow."""

    after: str
    tails: tuple[AccountTail, ...]
    complete: bool


Message = (
    Prepare
    | Promise
    | Accept
    | Accepted
    | Nack
    | Learn
    | CatchUpRequest
    | CatchUpReply
    | TailQuery
    | TailReport
    | TailsRequest
    | TailsReply
)


@dataclass(frozen=True, slots=True)
class Envelope:
    """A message in transit from node `source` to node `destination` (node indices)."""

    source: int
    destination: int
    message: Message
