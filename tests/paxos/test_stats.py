"""What the core counts for operators: rounds, the fast path, backoffs, takeovers,
leaderships, and how far behind each peer is as a leader sees it."""

from __future__ import annotations

from ledger.paxos import Accept
from ledger.paxos.account import LEARN_SLACK_SLOTS, peer_progress
from tests.support.paxos_network import LocalCluster


def test_the_first_write_runs_phase_one_and_the_next_take_the_fast_path() -> None:
    cluster = LocalCluster(3)
    cluster.propose(0, "alice", b"v0")
    cluster.deliver()
    for value in (b"v1", b"v2"):
        cluster.propose(0, "alice", value)
        cluster.deliver()
    stats = cluster.nodes[0].stats
    assert (stats.phase_one_rounds, stats.fast_path_proposals, stats.leaderships_won) == \
        (1, 2, 1)
    assert (stats.backoffs, stats.takeovers, stats.leaderships_lost) == (0, 0, 0)


def test_a_higher_ballot_ends_a_leadership() -> None:
    cluster = LocalCluster(3)
    cluster.propose(0, "alice", b"v0")
    cluster.deliver()
    cluster.propose(1, "alice", b"v1")  # a higher ballot: node 0's range promise ends
    cluster.deliver()
    assert cluster.nodes[0].stats.leaderships_lost == 1
    assert cluster.nodes[1].stats.leaderships_won == 1


def test_a_refused_round_backs_off() -> None:
    cluster = LocalCluster(3, fast_path=False)
    cluster.propose(2, "alice", b"first")
    # Nodes 1 and 2 promise node 2's ballot; node 0 never hears of it: its round is refused.
    cluster.deliver(drop=lambda e: e.destination == 0 or isinstance(e.message, Accept))
    cluster.propose(0, "alice", b"second")
    cluster.deliver()
    assert cluster.nodes[0].stats.backoffs == 1
    cluster.advance(2_000)
    assert cluster.nodes[0].stats.phase_one_rounds >= 2


def test_a_vote_left_undecided_is_settled_by_a_takeover() -> None:
    cluster = LocalCluster(3)
    cluster.propose(0, "alice", b"v0")
    cluster.deliver(drop=lambda e: e.destination == 2 or e.source == 2)  # (node 2 misses it)
    cluster.propose(0, "alice", b"v1")
    cluster.crash(0)  # its Accept reached the others, no decision did
    cluster.deliver()
    cluster.advance(10_000)
    assert sum(cluster.nodes[i].stats.takeovers for i in (1, 2)) >= 1
    assert cluster.log(1, "alice") == [b"v0", b"v1"]


def test_a_peer_that_misses_slots_lags_until_it_has_caught_up() -> None:
    cluster = LocalCluster(3)
    cluster.propose(0, "alice", b"v0")
    cluster.deliver()
    assert cluster.nodes[0].peer_lag() == [0, 0, 0]
    cluster.down.add(2)  # unreachable, state kept
    for number in range(1, 11):
        cluster.propose(0, "alice", b"v%d" % number)
        cluster.deliver()
    assert cluster.nodes[0].peer_lag() == [0, 0, 10]
    cluster.down.discard(2)
    cluster.propose(0, "alice", b"v11")
    cluster.deliver()  # node 2 votes at slot 11 with only slot 0 chosen, then catches up
    assert cluster.nodes[0].peer_lag() == [0, 0, 11]
    cluster.advance(2_000)
    assert cluster.log(2, "alice") == cluster.log(0, "alice")
    cluster.propose(0, "alice", b"v12")  # its vote reports its prefix: whole again
    cluster.deliver()
    assert cluster.nodes[0].peer_lag() == [0, 0, 0]


def test_a_voter_missing_more_than_the_slack_counts_only_its_prefix() -> None:
    assert peer_progress(voted=20, chosen_through=19) == 20
    assert peer_progress(voted=20, chosen_through=19 - LEARN_SLACK_SLOTS) == 20
    assert peer_progress(voted=20, chosen_through=18 - LEARN_SLACK_SLOTS) == \
        18 - LEARN_SLACK_SLOTS


def test_a_peer_down_when_leadership_is_won_counts_as_holding_nothing() -> None:
    cluster = LocalCluster(3)
    cluster.down.add(2)
    for number in range(5):
        cluster.propose(0, "alice", b"v%d" % number)
        cluster.deliver()
    assert cluster.nodes[0].peer_lag() == [0, 0, 5]  # slots 0-4: nothing known at node 2
