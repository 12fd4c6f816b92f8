"""The acceptor's rules, as Paxos Made Simple states them, one test each."""

from __future__ import annotations

from ledger.paxos import (
    NULL_BALLOT,
    Accept,
    Accepted,
    AcceptedEntry,
    AcceptWrite,
    Ballot,
    Learn,
    Nack,
    Prepare,
    Promise,
    PromiseWrite,
)
from ledger.paxos.acceptor import AcceptorState, on_accept, on_prepare

LOW, MID, HIGH = Ballot(1, 0), Ballot(2, 1), Ballot(3, 0)
CHOSEN = [b"opening", b"deposit"]


def read_chosen(from_slot: int, limit: int, max_bytes: int) -> list[bytes]:
    return CHOSEN[from_slot:from_slot + limit]


def prepare(state: AcceptorState, ballot: Ballot, from_slot: int = 0,
            chosen_through: int = -1) -> tuple[Promise | Nack, list]:
    return on_prepare(state, Prepare("a", from_slot, ballot), chosen_through, read_chosen, 64,
                      1 << 20)


def accept(state: AcceptorState, ballot: Ballot, slot: int = 0, value: bytes = b"v",
           chosen_through: int = -1) -> tuple[Accepted | Nack | Learn, list]:
    return on_accept(state, Accept("a", slot, ballot, value), chosen_through, read_chosen)


def test_p1b_an_acceptor_promises_a_ballot_higher_than_any_it_promised_and_persists_it() -> None:
    state = AcceptorState(NULL_BALLOT)
    reply, writes = prepare(state, MID)
    assert reply == Promise("a", 0, MID, (), (), -1)
    assert writes == [PromiseWrite("a", MID)]
    assert state.promised == MID


def test_an_acceptor_refuses_a_prepare_below_its_promise_and_names_the_promise() -> None:
    state = AcceptorState(HIGH)
    reply, writes = prepare(state, MID)
    assert reply == Nack("a", 0, MID, HIGH, -1)
    assert writes == []
    assert state.promised == HIGH


def test_a_repeated_prepare_with_the_promised_ballot_is_promised_again_without_a_write() -> None:
    state = AcceptorState(MID)
    reply, writes = prepare(state, MID)
    assert isinstance(reply, Promise)
    assert writes == []


def test_a_promise_reports_every_vote_at_or_after_the_prepared_slot() -> None:
    votes = {p: AcceptedEntry(p, LOW, b"v%d" % p) for p in (3, 4, 6)}
    state = AcceptorState(LOW, dict(votes))
    reply, _ = prepare(state, HIGH, from_slot=4, chosen_through=2)
    assert isinstance(reply, Promise)
    assert reply.accepted == (votes[4], votes[6])


def test_a_promise_covers_every_later_slot_of_the_account() -> None:
    state = AcceptorState(NULL_BALLOT)
    prepare(state, HIGH, from_slot=5)
    reply, writes = accept(state, MID, slot=9)
    assert reply == Nack("a", 9, MID, HIGH, -1)
    assert writes == []


def test_p2b_an_acceptor_accepts_unless_it_promised_a_higher_ballot() -> None:
    state = AcceptorState(MID)
    reply, writes = accept(state, MID, value=b"x")
    assert reply == Accepted("a", 0, MID)
    assert writes == [AcceptWrite("a", 0, MID, b"x")]
    assert state.votes[0] == AcceptedEntry(0, MID, b"x")


def test_accepting_a_higher_ballot_raises_the_promise_durably() -> None:
    state = AcceptorState(LOW)
    reply, writes = accept(state, HIGH)
    assert isinstance(reply, Accepted)
    assert writes == [PromiseWrite("a", HIGH), AcceptWrite("a", 0, HIGH, b"v")]
    assert prepare(state, MID)[0] == Nack("a", 0, MID, HIGH, -1)


def test_a_duplicate_accept_is_accepted_again_without_a_write() -> None:
    state = AcceptorState(MID)
    accept(state, MID)
    reply, writes = accept(state, MID)
    assert reply == Accepted("a", 0, MID)
    assert writes == []


def test_a_later_ballot_replaces_the_vote_at_a_slot() -> None:
    state = AcceptorState(LOW)
    accept(state, LOW, value=b"old")
    accept(state, HIGH, value=b"new")
    assert state.votes[0] == AcceptedEntry(0, HIGH, b"new")


def test_a_promise_reports_chosen_values_where_the_acceptor_knows_the_decision() -> None:
    state = AcceptorState(LOW, {2: AcceptedEntry(2, LOW, b"undecided")})
    reply, _ = prepare(state, HIGH, from_slot=0, chosen_through=1)
    assert isinstance(reply, Promise)
    assert reply.chosen == (b"opening", b"deposit")
    assert reply.chosen_through == 1
    assert reply.accepted == (AcceptedEntry(2, LOW, b"undecided"),)


def test_an_accept_at_a_chosen_slot_is_answered_with_the_chosen_value() -> None:
    state = AcceptorState(NULL_BALLOT)
    reply, writes = accept(state, HIGH, slot=1, value=b"other", chosen_through=1)
    assert reply == Learn("a", 1, b"deposit")
    assert writes == []
