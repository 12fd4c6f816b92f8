"""A whole node: acceptor, proposer and learner for every account, over a fake link."""

from __future__ import annotations

import pytest

from ledger.paxos import (
    Accept,
    AcceptWrite,
    CatchUpRequest,
    ChosenWrite,
    Learn,
    Nack,
    Prepare,
    Promise,
    PromiseWrite,
    ProposalInProgress,
    RoundWrite,
)
from tests.support.paxos_network import LocalCluster


def test_a_proposal_is_chosen_and_every_node_learns_it() -> None:
    cluster = LocalCluster(3)
    cluster.propose(0, "alice", b"open 100")
    cluster.deliver()
    assert [o.won for o in cluster.outcomes[0]] == [True]
    assert [cluster.log(i, "alice") for i in range(3)] == [[b"open 100"]] * 3


def test_slots_follow_each_other_without_gaps() -> None:
    cluster = LocalCluster(3)
    for value in (b"open", b"deposit 5", b"withdraw 2"):
        cluster.propose(1, "bob", value)
        cluster.deliver()
    assert [(o.slot, o.chosen) for o in cluster.outcomes[1]] == [
        (0, b"open"), (1, b"deposit 5"), (2, b"withdraw 2")
    ]


def test_accounts_are_independent_logs() -> None:
    cluster = LocalCluster(3)
    cluster.propose(0, "alice", b"a0")
    cluster.propose(0, "bob", b"b0")
    cluster.deliver()
    assert cluster.log(2, "alice") == [b"a0"] and cluster.log(2, "bob") == [b"b0"]


def test_a_promise_leaves_in_the_same_ready_as_the_write_that_makes_it_durable() -> None:
    cluster = LocalCluster(3)
    cluster.propose(0, "alice", b"v")
    cluster.deliver()
    for _, ready in cluster.readies:
        for envelope in ready.messages:
            if isinstance(envelope.message, Promise) and envelope.source == 1:
                assert PromiseWrite("alice", envelope.message.ballot) in ready.writes
                return
    raise AssertionError("node 1 never promised")


def test_the_round_is_reserved_durably_before_the_first_prepare_leaves() -> None:
    cluster = LocalCluster(3)
    ready = cluster.propose(0, "alice", b"v")
    prepares = [e.message for e in ready.messages if isinstance(e.message, Prepare)]
    (reservation,) = [w for w in ready.writes if isinstance(w, RoundWrite)]
    assert prepares and all(p.ballot.round <= reservation.reserved_round for p in prepares)


def test_a_restarted_node_never_reuses_a_round() -> None:
    cluster = LocalCluster(3)
    cluster.propose(0, "alice", b"v")
    cluster.deliver()
    used = max(e.message.ballot.round for e in cluster.sent(Prepare) if e.source == 0)
    cluster.crash(0)
    cluster.restart(0)
    ready = cluster.propose(0, "carol", b"w")
    (prepare,) = {e.message for e in ready.messages if isinstance(e.message, Prepare)}
    assert prepare.ballot.round > used


def test_the_losing_proposer_learns_the_winner_and_reports_it_in_its_outcome() -> None:
    cluster = LocalCluster(3, fast_path=False)
    cluster.propose(0, "alice", b"from 0")
    cluster.propose(2, "alice", b"from 2")
    cluster.deliver()
    cluster.advance(3_000)
    outcomes = cluster.outcomes[0] + cluster.outcomes[2]
    assert {o.slot for o in outcomes} == {0}
    assert sum(o.won for o in outcomes) == 1
    assert len({o.chosen for o in outcomes}) == 1


def test_a_nack_makes_the_proposer_retry_above_the_promised_ballot() -> None:
    cluster = LocalCluster(3, fast_path=False)
    cluster.propose(2, "alice", b"first")
    # Nodes 1 and 2 promise node 2's ballot; node 0 never hears of it; nothing is voted.
    cluster.deliver(drop=lambda e: e.destination == 0 or isinstance(e.message, Accept))
    cluster.propose(0, "alice", b"second")
    cluster.deliver()
    nacks = [e.message for e in cluster.sent(Nack) if e.destination == 0]
    assert nacks, "node 0's first ballot should have been refused"
    cluster.advance(2_000)
    retried = [e.message.ballot for e in cluster.sent(Prepare) if e.source == 0]
    assert max(retried) > max(n.promised for n in nacks)
    assert len(cluster.outcomes[0]) == 1 and len(set(map(tuple, [
        cluster.log(i, "alice") for i in range(3)]))) == 1


def test_the_fast_path_skips_prepare_while_the_range_promise_holds() -> None:
    cluster = LocalCluster(3)
    cluster.propose(0, "alice", b"v0")
    cluster.deliver()
    assert cluster.nodes[0].is_leader("alice")
    ready = cluster.propose(0, "alice", b"v1")
    kinds = {type(e.message) for e in ready.messages}
    assert kinds == {Accept}
    cluster.deliver()
    assert cluster.log(1, "alice") == [b"v0", b"v1"]


def test_a_higher_prepare_from_another_node_ends_the_fast_path() -> None:
    cluster = LocalCluster(3)
    cluster.propose(0, "alice", b"v0")
    cluster.deliver()
    cluster.propose(1, "alice", b"v1")
    cluster.deliver()
    assert not cluster.nodes[0].is_leader("alice")
    assert cluster.nodes[1].is_leader("alice")
    cluster.propose(0, "alice", b"v2")
    cluster.deliver()
    cluster.advance(2_000)
    assert cluster.log(2, "alice") == [b"v0", b"v1", b"v2"]


def test_the_fast_path_adopts_a_vote_reported_at_a_later_slot() -> None:
    cluster = LocalCluster(3)
    cluster.propose(2, "alice", b"v0")
    cluster.deliver()
    # v1 is chosen by nodes 1 and 2, but node 1 never hears so; then node 1 votes
    # for "orphan" at slot 2 and node 2, the only node that knows, dies.
    unaware = (Learn, CatchUpRequest)
    cluster.propose(2, "alice", b"v1")
    cluster.deliver(drop=lambda e: e.destination == 0 or isinstance(e.message, unaware))
    cluster.propose(2, "alice", b"orphan")
    cluster.deliver(drop=lambda e: e.destination == 0 or isinstance(e.message, unaware))
    cluster.crash(2)
    # Node 0 prepares from slot 1: node 1's promise reports votes at 1 and 2.
    cluster.propose(0, "alice", b"mine")
    cluster.deliver()
    assert cluster.outcomes[0][-1].chosen == b"v1"
    ready = cluster.propose(0, "alice", b"mine")
    assert {type(e.message) for e in ready.messages} == {Accept}  # the fast path
    assert {e.message.value for e in ready.messages} == {b"orphan"}  # adopted, not "mine"
    cluster.deliver()
    cluster.propose(0, "alice", b"mine")
    cluster.deliver()
    assert cluster.log(1, "alice") == [b"v0", b"v1", b"orphan", b"mine"]


def test_one_proposal_per_account_at_a_time() -> None:
    cluster = LocalCluster(3)
    cluster.propose(0, "alice", b"v0")
    with pytest.raises(ProposalInProgress):
        cluster.propose(0, "alice", b"v1")
    cluster.propose(0, "bob", b"other account is fine")


def test_a_node_that_missed_everything_catches_up_without_client_traffic() -> None:
    cluster = LocalCluster(3)
    for value in (b"v0", b"v1", b"v2"):
        cluster.propose(0, "alice", value)
        cluster.deliver(drop=lambda e: e.destination == 2)
    assert cluster.log(2, "alice") == []
    cluster.advance(5_000)  # anti-entropy finds the account, catch-up fetches it
    assert cluster.log(2, "alice") == [b"v0", b"v1", b"v2"]


def test_a_node_that_missed_one_learn_fills_the_gap() -> None:
    cluster = LocalCluster(3)
    cluster.propose(0, "alice", b"v0")
    cluster.deliver(drop=lambda e: isinstance(e.message, Learn) and e.destination == 2)
    cluster.propose(0, "alice", b"v1")
    cluster.deliver()
    cluster.advance(1_000)
    assert cluster.log(2, "alice") == [b"v0", b"v1"]


def test_a_vote_left_by_a_dead_proposer_is_settled_by_the_acceptor_holding_it() -> None:
    cluster = LocalCluster(3)
    cluster.propose(0, "alice", b"orphan")
    cluster.deliver(drop=lambda e: isinstance(e.message, Accept) and e.destination != 1)
    cluster.crash(0)
    assert cluster.log(1, "alice") == []
    cluster.advance(3_000)  # node 1 holds a vote nobody knows to be chosen
    assert cluster.log(1, "alice") == cluster.log(2, "alice") == [b"orphan"]
    assert cluster.stores[1].accounts_with_votes() == []


def test_a_settling_proposer_finds_the_log_end_where_no_majority_voted() -> None:
    cluster = LocalCluster(3)
    cluster.propose(0, "alice", b"v0")
    cluster.deliver()
    node = cluster.nodes[1]
    cluster.carry_out(1, node.propose("alice", b"will be cancelled", cluster.now_ms))
    cluster.carry_out(1, node.cancel("alice", cluster.now_ms))
    cluster.deliver(drop=lambda e: isinstance(e.message, Accept))
    cluster.advance(3_000)
    assert cluster.log(0, "alice") == [b"v0"]  # the log ends where nobody voted
    assert not cluster.nodes[1].is_proposing("alice")


def test_only_undecided_slots_are_held_in_memory() -> None:
    cluster = LocalCluster(3)
    for i in range(50):
        cluster.propose(0, "alice", b"v%d" % i)
        cluster.deliver()
    for node in cluster.nodes:
        state = node._accounts["alice"]
        assert state.acceptor.votes == {} and state.learned == {}
    assert cluster.stores[1].synced.votes == {}  # chosen values superseded the votes


def test_writes_of_a_step_are_ordered_promise_then_vote_then_decision() -> None:
    cluster = LocalCluster(1)
    cluster.propose(0, "alice", b"solo")
    cluster.deliver()
    kinds = [type(w) for _, ready in cluster.readies for w in ready.writes]
    assert kinds == [RoundWrite, PromiseWrite, AcceptWrite, ChosenWrite]
    assert cluster.log(0, "alice") == [b"solo"]
