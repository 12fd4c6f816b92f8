"""Rejoining after a lost disk, in the core: forgetting a former life, the floor, the fences."""

from __future__ import annotations

import pytest

from ledger.paxos import Accept, Accepted, Nack, Prepare, Promise
from ledger.paxos.ballot import Ballot
from ledger.paxos.messages import Envelope
from ledger.paxos.records import FenceWrite, FloorWrite
from ledger.paxos.rejoin import Rejoin, RejoinReport
from tests.support.paxos_network import LocalCluster


def test_a_peer_that_rejoined_is_forgotten_by_every_tally_and_range_promise() -> None:
    cluster = LocalCluster(5)
    cluster.propose(0, "alice", b"v0")
    cluster.deliver()
    assert cluster.nodes[0].is_leader("alice")  # its range promise counted node 1's
    # Node 0 proposes on the fast path; only its own and node 1's votes reach it.
    cluster.propose(0, "alice", b"v1")
    cluster.deliver(drop=lambda e: e.destination == 0 and e.source >= 2)
    proposer = cluster.nodes[0]._accounts.get("alice").proposer
    assert proposer is not None and proposer.accepted_by == {0, 1}
    cluster.nodes[0].forget_peer(1)
    assert not cluster.nodes[0].is_leader("alice")
    assert proposer.accepted_by == {0}  # node 1's vote no longer counts
    with pytest.raises(Exception, match="cannot forget"):
        cluster.nodes[0].forget_peer(0)


def test_after_recovery_no_promise_or_vote_at_or_below_the_floor() -> None:
    cluster = LocalCluster(3)
    store = cluster.stores[2]
    store.stage([FloorWrite(40)])
    store.sync()
    cluster.nodes[2] = cluster._new_node(2)
    for ballot in (Ballot(40, 0), Ballot(40, 1), Ballot(12, 1)):
        ready = cluster.nodes[2].handle(Envelope(1, 2, Prepare("a", 0, ballot)), 0)
        (reply,) = [e.message for e in ready.messages]
        assert isinstance(reply, Nack) and reply.promised.round >= 40
        ready = cluster.nodes[2].handle(Envelope(1, 2, Accept("a", 0, ballot, b"v")), 0)
        assert all(isinstance(e.message, Nack) for e in ready.messages)
    ready = cluster.nodes[2].handle(Envelope(1, 2, Prepare("a", 0, Ballot(41, 0))), 0)
    assert [type(e.message) for e in ready.messages] == [Promise]
    # Its own ballots start above the floor.
    ready = cluster.propose(2, "b", b"x")
    prepares = [e.message for e in ready.messages if isinstance(e.message, Prepare)]
    assert prepares and all(p.ballot.round > 40 for p in prepares)


def test_a_fenced_slot_gets_no_vote_and_no_promise_until_it_is_learned() -> None:
    cluster = LocalCluster(3)
    store = cluster.stores[2]
    store.stage([FenceWrite("a", 1)])
    store.sync()
    cluster.nodes[2] = cluster._new_node(2)
    node = cluster.nodes[2]
    for message in (Prepare("a", 0, Ballot(5, 1)), Prepare("a", 1, Ballot(5, 1)),
                    Accept("a", 0, Ballot(5, 1), b"v"), Accept("a", 1, Ballot(5, 1), b"v")):
        answers = [e.message for e in node.handle(Envelope(1, 2, message), 0).messages]
        assert not [a for a in answers if isinstance(a, (Promise, Accepted, Nack))]
    # Past the fence it is a fresh acceptor.
    ready = node.handle(Envelope(1, 2, Prepare("a", 2, Ballot(6, 1))), 0)
    assert [type(e.message) for e in ready.messages] == [Promise]
    ready = node.handle(Envelope(1, 2, Accept("a", 2, Ballot(6, 1), b"w")), 0)
    assert [type(e.message) for e in ready.messages] == [Accepted]
    # Once it has learned slots 0 and 1 (nodes 0 and 1 chose them), it votes again.
    cluster.propose(0, "a", b"v0")
    cluster.deliver()
    cluster.propose(0, "a", b"v1")
    cluster.deliver()
    cluster.advance(2_000)
    assert cluster.log(2, "a")[:2] == cluster.log(0, "a")[:2]


def test_rejoin_waits_for_every_other_member_then_fences_at_the_highest_report() -> None:
    rejoin = Rejoin(0, 3)
    rejoin.on_report(RejoinReport(1, 7, {"a": 3, "b": 0}))
    assert not rejoin.complete and rejoin.missing() == [2]
    with pytest.raises(ValueError, match="not reported"):
        rejoin.writes({})
    with pytest.raises(ValueError):
        rejoin.on_report(RejoinReport(0, 1, {}))
    rejoin.on_report(RejoinReport(2, 9, {"a": 5, "c": 1}))
    assert rejoin.writes({"c": 1}) == [FloorWrite(9), FenceWrite("a", 5), FenceWrite("b", 0)]
