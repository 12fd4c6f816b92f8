"""What a node holds in memory for one account: only what is undecided.

Its acceptor's promise and votes above the chosen prefix, values learned beyond
a gap, the proposal in flight, the range promise it holds (`Leadership`), its
read barriers, and the deadlines of its catch-up, recovery and timers. Decided
slots live in storage; `load_account_state` rebuilds the rest from there.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ledger.paxos.acceptor import AcceptorState
from ledger.paxos.ballot import Ballot
from ledger.paxos.barriers import Barrier
from ledger.paxos.messages import AcceptedEntry
from ledger.paxos.proposer import Proposer
from ledger.paxos.records import AccountRecord


@dataclass(slots=True)
class Leadership:
    """A majority promised `ballot` for every slot >= `next_slot`.

    While it holds, proposals at `next_slot` skip Phase 1 (Multi-Paxos' fast
    path), adopting `later_votes` reported by the promises where there are any.
    """

    ballot: Ballot
    next_slot: int
    later_votes: dict[int, AcceptedEntry]
    since_slot: int  # the Prepare that won the promise named this slot
    # For operators, how far behind each node is (see `peer_progress`): per node, the
    # highest slot it voted for under `ballot`, and the end of its chosen prefix as its
    # promise or latest vote reported it (both -1 for one that did not promise: until it
    # votes, nothing is known to be there).
    peer_voted: list[int]
    peer_chosen_through: list[int]


#: A voter's chosen prefix may trail its vote by this many slots and still count as
#: whole: the Learns of the last slots may reach it after the next Accept.
LEARN_SLACK_SLOTS = 4


def peer_progress(voted: int, chosen_through: int) -> int:
    """How far a node holds an account's log, as a leader sees it: through its latest
    vote (the leader's value there, chosen or about to be) if its chosen prefix reaches
    nearly that far, else only through that prefix (it missed slots: it is catching up)."""
    return voted if chosen_through >= voted - 1 - LEARN_SLACK_SLOTS else chosen_through


@dataclass(slots=True)
class AccountState:
    """Everything the node holds in memory for one account."""

    acceptor: AcceptorState
    chosen_through: int  # end of the contiguous chosen prefix (-1: none)
    known_tail: int  # highest slot this node knows to be chosen somewhere
    last_activity_ms: int  # last Prepare/Accept/Learn from another node, or own proposal
    max_seen_round: int = 0  # highest round seen in this incarnation's messages
    # Chosen beyond a gap: slot -> (value, the node that said so).
    learned: dict[int, tuple[bytes, int]] = field(default_factory=dict)
    proposer: Proposer | None = None
    leader: Leadership | None = None
    catch_up_at_ms: int | None = None  # next catch-up request, while behind
    catch_up_source: int | None = None  # a peer known to be ahead
    recovery_at_ms: int | None = None  # when to settle undecided slots ourselves
    timer_ms: int | None = None  # earliest timer queued for this account
    barriers: dict[int, Barrier] = field(default_factory=dict)
    quarantined: str | None = None  # why this node stopped acting on the account

    def unsettled(self) -> bool:
        """Does this node hold votes or know of slots it has not seen decided?"""
        return bool(self.acceptor.votes) or bool(self.learned) or (
            self.known_tail > self.chosen_through
        )

    def highest_slot(self) -> int:
        """The highest slot this node knows anything of: chosen somewhere, voted or learned."""
        return max(self.known_tail, max(self.acceptor.votes, default=-1),
                   max(self.learned, default=-1))

    def note_tail(self, tail: int, source: int, node_index: int) -> None:
        """Slot `tail` is chosen at node `source` (this node is `node_index`)."""
        if tail > self.known_tail:
            self.known_tail = tail
            self.catch_up_source = source if source != node_index else None


def load_account_state(record: AccountRecord, now_ms: int, floor: int = 0) -> AccountState:
    """The in-memory state of an account this node has not touched since it started.

    `floor` is the node's round floor (see records.FloorWrite). A fence above the
    chosen prefix counts as a known tail: the node catches up to it.
    """
    votes = {vote.slot: vote for vote in record.accepted}
    # The store's contract (a chosen value supersedes the votes at its slot), not
    # something a peer's message can break.
    assert all(slot > record.chosen_through for slot in votes)
    return AccountState(
        acceptor=AcceptorState(record.promised, votes, floor, record.fence_slot),
        chosen_through=record.chosen_through,
        known_tail=max(record.chosen_through, record.fence_slot),
        last_activity_ms=now_ms,
    )
