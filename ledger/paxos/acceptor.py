"""The acceptor role for one account's log: Paxos Made Simple's rules, per slot.

A promise covers every slot of the account at once (a Prepare names the
first slot the proposer cares about; promising more never hurts safety).
Votes are kept only for undecided slots: once a slot is chosen the
learner's record supersedes the vote, and the acceptor answers for it with the
chosen value.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ledger.paxos.ballot import Ballot
from ledger.paxos.messages import (
    Accept,
    Accepted,
    AcceptedEntry,
    Learn,
    Nack,
    Prepare,
    Promise,
)
from ledger.paxos.records import AcceptWrite, DurableView, PromiseWrite, Write

#: Reads chosen values of this account: (from_slot, limit, max_bytes) -> contiguous values,
#: at most `limit` of them and, past the first, about `max_bytes` in all.
ChosenReader = Callable[[int, int, int], Sequence[bytes]]

READ_PAGE = 128  # chosen values read from the store at a time while filling a byte budget


def read_chosen(store: DurableView, account: str, from_slot: int, limit: int,
                max_bytes: int) -> tuple[bytes, ...]:
    """Chosen values from `from_slot` on: at most `limit`, and no more once `max_bytes` is
    reached (the first value always counts), read a page at a time so that a budget of a
    few MiB never reads a thousand large values first."""
    values: list[bytes] = []
    size = 0
    while len(values) < limit:
        page = store.chosen_values(account, from_slot + len(values),
                                   min(READ_PAGE, limit - len(values)))
        for value in page:
            if values and size + len(value) > max_bytes:
                return tuple(values)
            values.append(value)
            size += len(value)
        if len(page) < READ_PAGE:
            break
    return tuple(values)


def chosen_reader(store: DurableView, account: str) -> ChosenReader:
    """A ChosenReader of `account` over the node's durable state."""

    def read(from_slot: int, limit: int, max_bytes: int) -> tuple[bytes, ...]:
        return read_chosen(store, account, from_slot, limit, max_bytes)

    return read


@dataclass(slots=True)
class AcceptorState:
    """What one account's acceptor remembers (a cache of its durable record)."""

    promised: Ballot
    votes: dict[int, AcceptedEntry] = field(default_factory=dict)  # undecided slots only
    # After `ledger recover` (see records.FloorWrite and FenceWrite): no promise or vote
    # at a round <= floor, and none while undecided slots <= fence_slot are in play.
    floor: int = 0
    fence_slot: int = -1

    def fenced(self, from_slot: int, chosen_through: int) -> bool:
        """Would an answer about slots >= `from_slot` speak for a slot this node cannot
        vouch for (undecided here, and at or below the fence)?"""
        return self.fence_slot >= max(from_slot, chosen_through + 1)

    def refusal(self) -> Ballot:
        """The ballot a Nack names: above the floor, so the proposer's next round is too."""
        if self.floor == 0:
            return self.promised
        return max(self.promised, Ballot(self.floor, 0))


def on_prepare(
    state: AcceptorState,
    prepare: Prepare,
    chosen_through: int,
    read_chosen: ChosenReader,
    chosen_limit: int,
    chosen_bytes: int,
) -> tuple[Promise | Nack | None, list[Write]]:
    """Promise `prepare.ballot` unless a higher ballot was promised; report votes.

    A repeated Prepare with the promised ballot is promised again (messages may be
    duplicated); it needs no new write. None (no answer at all) while the range
    covers a fenced slot: a promise that reports no vote there might hide a vote this
    node lost, so the proposer must find a majority without it.
    """
    if state.fenced(prepare.from_slot, chosen_through):
        return None, []
    if prepare.ballot < state.promised or prepare.ballot.round <= state.floor:
        return Nack(prepare.account, prepare.from_slot, prepare.ballot, state.refusal(),
                    chosen_through), []
    writes: list[Write] = []
    if prepare.ballot > state.promised:
        state.promised = prepare.ballot
        writes.append(PromiseWrite(prepare.account, prepare.ballot))
    votes = tuple(
        vote for slot, vote in sorted(state.votes.items())
        if slot >= prepare.from_slot
    )
    chosen: tuple[bytes, ...] = ()
    if prepare.from_slot <= chosen_through:
        # The proposer learns these outright, and catches up on the rest.
        count = min(chosen_limit, chosen_through - prepare.from_slot + 1)
        chosen = tuple(read_chosen(prepare.from_slot, count, chosen_bytes))
        assert chosen, "storage must show every chosen value of the prefix"
    promise = Promise(prepare.account, prepare.from_slot, prepare.ballot, votes, chosen,
                      chosen_through)
    return promise, writes


def on_accept(
    state: AcceptorState,
    accept: Accept,
    chosen_through: int,
    read_chosen: ChosenReader,
) -> tuple[Accepted | Nack | Learn | None, list[Write]]:
    """Accept unless a higher ballot was promised; at a chosen slot, tell the chosen value.

    None (no answer) at a fenced slot: this node votes there only once it has learned
    what was chosen.
    """
    if accept.slot <= chosen_through:
        (value,) = read_chosen(accept.slot, 1, 0)
        return Learn(accept.account, accept.slot, value), []
    if state.fenced(accept.slot, chosen_through):
        return None, []
    if accept.ballot < state.promised or accept.ballot.round <= state.floor:
        return Nack(accept.account, accept.slot, accept.ballot, state.refusal(),
                    chosen_through), []
    writes: list[Write] = []
    if accept.ballot > state.promised:
        state.promised = accept.ballot
        writes.append(PromiseWrite(accept.account, accept.ballot))
    vote = AcceptedEntry(accept.slot, accept.ballot, accept.value)
    if state.votes.get(accept.slot) != vote:
        state.votes[accept.slot] = vote
        writes.append(AcceptWrite(accept.account, accept.slot, accept.ballot, accept.value))
    return Accepted(accept.account, accept.slot, accept.ballot, chosen_through), writes
