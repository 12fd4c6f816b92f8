"""The acceptor role for one account's log: Paxos Made Simple's rules, per position.

A promise covers every position of the account at once (a Prepare names the
first position the proposer cares about; promising more never hurts safety).
Votes are kept only for undecided positions: once a position is chosen the
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
from ledger.paxos.records import AcceptWrite, PromiseWrite, Write

#: Reads chosen values of this account: (from_position, limit) -> contiguous values.
ChosenReader = Callable[[int, int], Sequence[bytes]]


@dataclass(slots=True)
class AcceptorState:
    """What one account's acceptor remembers (a cache of its durable record)."""

    promised: Ballot
    votes: dict[int, AcceptedEntry] = field(default_factory=dict)  # undecided positions only


def on_prepare(
    state: AcceptorState,
    prepare: Prepare,
    chosen_through: int,
    read_chosen: ChosenReader,
    chosen_limit: int,
) -> tuple[Promise | Nack, list[Write]]:
    """Promise `prepare.ballot` unless a higher ballot was promised; report votes.

    A repeated Prepare with the promised ballot is promised again (messages may be
    duplicated); it needs no new write.
    """
    if prepare.ballot < state.promised:
        return Nack(prepare.account, prepare.from_position, prepare.ballot, state.promised,
                    chosen_through), []
    writes: list[Write] = []
    if prepare.ballot > state.promised:
        state.promised = prepare.ballot
        writes.append(PromiseWrite(prepare.account, prepare.ballot))
    votes = tuple(
        vote for position, vote in sorted(state.votes.items())
        if position >= prepare.from_position
    )
    chosen: tuple[bytes, ...] = ()
    if prepare.from_position <= chosen_through:
        count = min(chosen_limit, chosen_through - prepare.from_position + 1)
        chosen = tuple(read_chosen(prepare.from_position, count))
        assert len(chosen) == count, "storage must show every chosen value of the prefix"
    promise = Promise(prepare.account, prepare.from_position, prepare.ballot, votes, chosen,
                      chosen_through)
    return promise, writes


def on_accept(
    state: AcceptorState,
    accept: Accept,
    chosen_through: int,
    read_chosen: ChosenReader,
) -> tuple[Accepted | Nack | Learn, list[Write]]:
    """Accept unless a higher ballot was promised; at a chosen position, tell the chosen value."""
    if accept.position <= chosen_through:
        (value,) = read_chosen(accept.position, 1)
        return Learn(accept.account, accept.position, value), []
    if accept.ballot < state.promised:
        return Nack(accept.account, accept.position, accept.ballot, state.promised,
                    chosen_through), []
    writes: list[Write] = []
    if accept.ballot > state.promised:
        state.promised = accept.ballot
        writes.append(PromiseWrite(accept.account, accept.ballot))
    vote = AcceptedEntry(accept.position, accept.ballot, accept.value)
    if state.votes.get(accept.position) != vote:
        state.votes[accept.position] = vote
        writes.append(AcceptWrite(accept.account, accept.position, accept.ballot, accept.value))
    return Accepted(accept.account, accept.position, accept.ballot), writes
