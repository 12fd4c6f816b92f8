"""The proposer role for one slot of one account's log."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from ledger.paxos.ballot import NULL_BALLOT, Ballot
from ledger.paxos.messages import Accept, AcceptedEntry, Prepare, Promise


class Phase(enum.Enum):
    PREPARE = "prepare"  # waiting for a majority of promises
    ACCEPT = "accept"  # waiting for a majority of accepteds
    BACKOFF = "backoff"  # refused; waiting to retry with a higher ballot


@dataclass(frozen=True, slots=True)
class PhaseOne:
    """What a majority of promises allows.

    `value` is the value to send in Accepts, or None when the proposer has no value
    of its own and nobody voted at the slot: nothing is chosen there, the log
    ends before it. `later_votes` holds the highest-ballot vote reported at each
    later slot; the fast path must adopt them when it gets there.
    """

    value: bytes | None
    later_votes: dict[int, AcceptedEntry]


@dataclass(slots=True, eq=False)
class Proposer:
    """Drives one (account, slot) to a decision.

    `value` is the node's own proposal (None when it only settles a slot it
    found undecided); `fallback` is proposed when the majority reports no vote and
    there is no own value (a vote the node's own acceptor holds).
    """

    account: str
    slot: int
    value: bytes | None
    fallback: bytes | None = None
    ballot: Ballot = NULL_BALLOT
    phase: Phase = Phase.BACKOFF
    deadline_ms: int = 0
    attempt: int = 0  # refusals so far; sets the backoff ceiling
    promises: dict[int, Promise] = field(default_factory=dict)
    proposal: bytes | None = None  # the value sent in Accepts under `ballot`
    accepted_by: set[int] = field(default_factory=set)
    prepare_seq: int = 0  # the node's count of prepares when this round began

    def begin_prepare(self, ballot: Ballot, now_ms: int, resend_ms: int) -> Prepare:
        assert ballot > self.ballot, "a new round needs a higher ballot"
        self.ballot = ballot
        self.phase = Phase.PREPARE
        self.promises = {}
        self.proposal = None
        self.accepted_by = set()
        self.deadline_ms = now_ms + resend_ms
        return Prepare(self.account, self.slot, ballot)

    def on_promise(self, source: int, promise: Promise, quorum: int) -> PhaseOne | None:
        """Record a promise; with a majority, say which value may be proposed."""
        assert self.phase is Phase.PREPARE and promise.ballot == self.ballot
        assert promise.from_slot == self.slot and not promise.chosen
        self.promises[source] = promise
        if len(self.promises) < quorum:
            return None
        later: dict[int, AcceptedEntry] = {}
        for reply in self.promises.values():
            for vote in reply.accepted:
                if vote.slot > self.slot:
                    best = later.get(vote.slot)
                    if best is None or vote.ballot > best.ballot:
                        later[vote.slot] = vote
        return PhaseOne(self.choose_value(), later)

    def choose_value(self) -> bytes | None:
        """The value of the highest-ballot vote a majority reported here, else our own."""
        best: AcceptedEntry | None = None
        for reply in self.promises.values():
            for vote in reply.accepted:
                if vote.slot == self.slot and (best is None or vote.ballot > best.ballot):
                    best = vote
        if best is not None:
            return best.value
        return self.value if self.value is not None else self.fallback

    def begin_accept(self, ballot: Ballot, value: bytes, now_ms: int, resend_ms: int) -> Accept:
        """Phase 2 under `ballot`: after our own Phase 1, or on the fast path."""
        assert ballot >= self.ballot
        self.ballot = ballot
        self.phase = Phase.ACCEPT
        self.proposal = value
        self.accepted_by = set()
        self.deadline_ms = now_ms + resend_ms
        return Accept(self.account, self.slot, ballot, value)

    def on_accepted(self, source: int, quorum: int) -> bool:
        """Record an Accepted; True once a majority accepted: the proposal is chosen."""
        assert self.phase is Phase.ACCEPT
        self.accepted_by.add(source)
        return len(self.accepted_by) >= quorum

    def back_off(self, until_ms: int) -> None:
        self.phase = Phase.BACKOFF
        self.deadline_ms = until_ms
        self.attempt += 1

    def pending_request(self) -> Prepare | Accept:
        """The message of the current phase, to resend to nodes that did not answer."""
        if self.phase is Phase.PREPARE:
            return Prepare(self.account, self.slot, self.ballot)
        assert self.phase is Phase.ACCEPT and self.proposal is not None
        return Accept(self.account, self.slot, self.ballot, self.proposal)

    def answered(self) -> set[int]:
        if self.phase is Phase.PREPARE:
            return set(self.promises)
        return set(self.accepted_by)
