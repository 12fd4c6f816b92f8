"""Messages exchanged between Paxos nodes: immutable, hashable, I/O-free.

Every message names one account; the transport may pack many of them (many
slots, many accounts) into one network call.
"""

from __future__ import annotations

from dataclasses import dataclass

from ledger.paxos.ballot import Ballot


@dataclass(frozen=True, slots=True)
class AcceptedEntry:
    """An acceptor's vote: it accepted `value` at `slot` under `ballot`."""

    slot: int
    ballot: Ballot
    value: bytes


@dataclass(frozen=True, slots=True)
class Prepare:
    """Phase 1a: promise `ballot` for every slot >= `from_slot` of `account`."""

    account: str
    from_slot: int
    ballot: Ballot


@dataclass(frozen=True, slots=True)
class Promise:
    """Phase 1b: the acceptor promised `ballot` for every slot >= `from_slot`.

    `accepted` holds every vote the acceptor has cast at an undecided slot
    >= `from_slot`. Slots the acceptor already knows to be chosen are
    reported as `chosen` values instead (contiguous from `from_slot`, at most
    a configured number); `chosen_through` is the end of its chosen prefix.
    """

    account: str
    from_slot: int
    ballot: Ballot
    accepted: tuple[AcceptedEntry, ...]
    chosen: tuple[bytes, ...]
    chosen_through: int


@dataclass(frozen=True, slots=True)
class Accept:
    """Phase 2a: accept `value` at `slot` under `ballot`."""

    account: str
    slot: int
    ballot: Ballot
    value: bytes


@dataclass(frozen=True, slots=True)
class Accepted:
    """Phase 2b: the acceptor accepted the proposer's value at `slot` under `ballot`.

    `chosen_through` is the end of the acceptor's chosen prefix as it voted: a leader
    sees from it how far behind each peer is (nothing in Paxos depends on it)."""

    account: str
    slot: int
    ballot: Ballot
    chosen_through: int = -1


@dataclass(frozen=True, slots=True)
class Nack:
    """A Prepare or Accept under `ballot` was refused: the acceptor promised `promised`."""

    account: str
    slot: int
    ballot: Ballot
    promised: Ballot
    chosen_through: int


@dataclass(frozen=True, slots=True)
class Learn:
    """`value` is chosen at `slot` of `account` (sent by a node that knows)."""

    account: str
    slot: int
    value: bytes


@dataclass(frozen=True, slots=True)
class CatchUpRequest:
    """What is chosen at `account` from `from_slot` on (at most `limit` values)?"""

    account: str
    from_slot: int
    limit: int


@dataclass(frozen=True, slots=True)
class CatchUpReply:
    """The chosen values at `from_slot`, `from_slot + 1`, ... as far as known."""

    account: str
    from_slot: int
    values: tuple[bytes, ...]
    chosen_through: int


@dataclass(frozen=True, slots=True)
class TailQuery:
    """Read barrier: how far do your chosen prefix and your votes on `account` reach?"""

    account: str
    nonce: int  # names the barrier round the answer belongs to


@dataclass(frozen=True, slots=True)
class TailReport:
    """The answer to a TailQuery: chosen prefix end and highest voted slot (-1: none)."""

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
