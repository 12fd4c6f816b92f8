"""The proposer's rules for one slot, one test each."""

from __future__ import annotations

from ledger.paxos import AcceptedEntry, Ballot, Promise
from ledger.paxos.proposer import Phase, Proposer

B1, B2, B3 = Ballot(1, 0), Ballot(2, 1), Ballot(3, 2)


def promise(ballot: Ballot, *votes: AcceptedEntry, slot: int = 0) -> Promise:
    return Promise("a", slot, ballot, tuple(votes), (), slot - 1)


def prepared(value: bytes | None = b"mine", fallback: bytes | None = None) -> Proposer:
    proposer = Proposer("a", 0, value, fallback=fallback)
    proposer.begin_prepare(B3, now_ms=0, resend_ms=100)
    return proposer


def test_a_proposer_needs_a_majority_of_promises_before_phase_two() -> None:
    proposer = prepared()
    assert proposer.on_promise(0, promise(B3), quorum=2) is None
    assert proposer.on_promise(0, promise(B3), quorum=2) is None  # a duplicate is not a second
    assert proposer.on_promise(1, promise(B3), quorum=2) is not None


def test_p2c_a_proposer_adopts_the_value_of_the_highest_ballot_vote_reported() -> None:
    proposer = prepared()
    proposer.on_promise(0, promise(B3, AcceptedEntry(0, B1, b"older")), quorum=2)
    phase_one = proposer.on_promise(1, promise(B3, AcceptedEntry(0, B2, b"newer")), quorum=2)
    assert phase_one is not None and phase_one.value == b"newer"


def test_a_proposer_proposes_its_own_value_when_the_majority_reports_no_vote() -> None:
    proposer = prepared()
    proposer.on_promise(0, promise(B3), quorum=2)
    phase_one = proposer.on_promise(1, promise(B3), quorum=2)
    assert phase_one is not None and phase_one.value == b"mine"


def test_a_proposer_without_a_value_finds_the_end_of_the_log_where_nobody_voted() -> None:
    proposer = prepared(value=None)
    proposer.on_promise(0, promise(B3), quorum=2)
    phase_one = proposer.on_promise(1, promise(B3), quorum=2)
    assert phase_one is not None and phase_one.value is None


def test_a_settling_proposer_proposes_its_own_acceptors_vote_when_the_majority_has_none() -> None:
    proposer = prepared(value=None, fallback=b"my acceptor's vote")
    proposer.on_promise(0, promise(B3), quorum=2)
    phase_one = proposer.on_promise(1, promise(B3), quorum=2)
    assert phase_one is not None and phase_one.value == b"my acceptor's vote"


def test_votes_at_later_slots_are_kept_for_the_fast_path() -> None:
    proposer = prepared()
    proposer.on_promise(0, promise(B3, AcceptedEntry(2, B1, b"a")), quorum=2)
    phase_one = proposer.on_promise(1, promise(B3, AcceptedEntry(2, B2, b"b")), quorum=2)
    assert phase_one is not None
    assert phase_one.later_votes == {2: AcceptedEntry(2, B2, b"b")}


def test_a_value_is_chosen_once_a_majority_of_acceptors_accepted_it() -> None:
    proposer = prepared()
    proposer.begin_accept(B3, b"mine", now_ms=0, resend_ms=100)
    assert not proposer.on_accepted(0, quorum=2)
    assert not proposer.on_accepted(0, quorum=2)
    assert proposer.on_accepted(2, quorum=2)


def test_a_refused_proposer_backs_off_and_counts_the_attempt() -> None:
    proposer = prepared()
    proposer.back_off(until_ms=50)
    assert proposer.phase is Phase.BACKOFF
    assert proposer.deadline_ms == 50
    assert proposer.attempt == 1


def test_a_new_round_needs_a_higher_ballot() -> None:
    proposer = prepared()
    try:
        proposer.begin_prepare(B1, now_ms=0, resend_ms=100)
    except AssertionError:
        return
    raise AssertionError("a lower ballot was accepted for a new round")
