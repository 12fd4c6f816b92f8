"""A peer that contradicts a value this node knows is chosen is not believed: the account
is quarantined on this node with an alarm naming both values and the peer, and every
other account carries on. Nothing of it is an exception."""

from __future__ import annotations

import random

import pytest

from ledger.paxos import (
    Ballot,
    CatchUpReply,
    Envelope,
    Learn,
    PaxosConfig,
    PaxosNode,
    Prepare,
    Promise,
    Quarantined,
    Ready,
)
from ledger.paxos.ballot import MAX_ROUND
from ledger.paxos.messages import Nack
from ledger.storage.memory import MemoryStore


def new_node() -> tuple[PaxosNode, MemoryStore]:
    store = MemoryStore()
    return PaxosNode(0, PaxosConfig(cluster_size=3), store, random.Random(0), 0), store


def carry_out(store: MemoryStore, ready: Ready) -> Ready:
    store.stage(ready.writes)
    store.sync()
    return ready


def learn(node: PaxosNode, store: MemoryStore, source: int, slot: int, value: bytes,
          account: str = "alice") -> Ready:
    return carry_out(store, node.handle(Envelope(source, 0, Learn(account, slot, value)), 0))


def test_two_values_reported_beyond_a_gap_quarantine_the_account() -> None:
    node, store = new_node()
    learn(node, store, 1, 2, b"one")
    assert not learn(node, store, 1, 2, b"one").alarms  # a duplicate is fine
    ready = learn(node, store, 2, 2, b"two")
    (alarm,) = ready.alarms
    assert alarm.account == "alice"
    assert "two values for slot 2" in alarm.reason
    assert b"one".hex() in alarm.reason and b"two".hex() in alarm.reason
    assert "node 1" in alarm.reason and "node 2" in alarm.reason
    assert node.quarantine_reason("alice") == alarm.reason


def test_a_value_contradicting_the_chosen_prefix_quarantines_the_account() -> None:
    node, store = new_node()
    committed = learn(node, store, 1, 0, b"opening")
    assert [c.value for c in committed.committed] == [b"opening"]
    assert not learn(node, store, 2, 0, b"opening").alarms  # the same value again
    ready = learn(node, store, 2, 0, b"forged")
    (alarm,) = ready.alarms
    assert "chosen here" in alarm.reason and "reported by node 2" in alarm.reason
    assert store.chosen_values("alice", 0, 5) == [b"opening"], "nothing was overwritten"


def test_a_forged_catch_up_reply_or_promise_is_checked_the_same_way() -> None:
    node, store = new_node()
    learn(node, store, 1, 0, b"opening")
    reply = CatchUpReply("alice", 0, (b"opening", b"next"), 1)
    assert not carry_out(store, node.handle(Envelope(1, 0, reply), 0)).alarms
    forged = Promise("alice", 1, Ballot(5, 2), (), (b"other",), 1)
    (alarm,) = carry_out(store, node.handle(Envelope(2, 0, forged), 0)).alarms
    assert "slot 1" in alarm.reason
    assert store.chosen_values("alice", 0, 5) == [b"opening", b"next"]


def test_a_quarantined_account_is_left_alone_and_the_others_carry_on() -> None:
    node, store = new_node()
    learn(node, store, 1, 0, b"v")
    learn(node, store, 2, 0, b"w")
    assert node.quarantine_reason("alice") is not None
    with pytest.raises(Quarantined):
        node.propose("alice", b"mine", 0)
    with pytest.raises(Quarantined):
        node.read_barrier("alice", 0)
    ignored = node.handle(Envelope(1, 0, Prepare("alice", 1, Ballot(9, 1))), 0)
    assert not ignored.messages and not ignored.writes
    other = learn(node, store, 1, 0, b"fine", account="bob")
    assert [c.value for c in other.committed] == [b"fine"]
    assert node.quarantine_reason("bob") is None
    assert carry_out(store, node.propose("bob", b"next", 0)).messages


def test_a_node_whose_rounds_would_pass_the_bound_quarantines_the_account() -> None:
    node, store = new_node()
    # A peer refused us with a ballot at the very last round.
    carry_out(store, node.propose("alice", b"mine", 0))
    nack = Nack("alice", 0, Ballot(1, 0), Ballot(MAX_ROUND, 2), -1)
    carry_out(store, node.handle(Envelope(2, 0, nack), 0))
    ready = carry_out(store, node.tick(60_000))  # the retry after backoff needs a round
    (alarm,) = ready.alarms
    assert "rounds exhausted" in alarm.reason
    assert store.reserved_round() <= MAX_ROUND + PaxosConfig(cluster_size=3).round_reservation


def test_catch_up_replies_and_promises_are_bounded_by_bytes() -> None:
    from ledger.paxos import CatchUpRequest
    from ledger.paxos.records import ChosenWrite

    node, store = new_node()
    big = bytes(600 << 10)  # a large (but legal) value: 600 KiB
    store.stage([ChosenWrite("alice", slot, big) for slot in range(20)])
    store.sync()
    reply = node.handle(Envelope(1, 0, CatchUpRequest("alice", 0, 1_000)), 0).messages[0]
    config = node.config
    assert isinstance(reply.message, CatchUpReply)
    assert 1 <= len(reply.message.values) < 20
    assert sum(map(len, reply.message.values)) <= config.catch_up_bytes
    promise = node.handle(Envelope(1, 0, Prepare("alice", 0, Ballot(4, 1))), 0).messages[0]
    assert isinstance(promise.message, Promise)
    assert 1 <= len(promise.message.chosen) < 20
    assert sum(map(len, promise.message.chosen)) <= config.promise_chosen_bytes
    assert promise.message.chosen_through == 19  # the proposer catches up on the rest


def test_no_vote_is_cast_far_past_the_chosen_prefix() -> None:
    from ledger.paxos import Accept, Accepted

    node, store = new_node()
    far = node.config.accept_ahead_limit + 1
    ready = carry_out(store, node.handle(Envelope(1, 0, Accept("alice", far, Ballot(3, 1),
                                                                  b"v")), 0))
    assert not ready.writes
    assert not any(isinstance(e.message, Accepted) for e in ready.messages)
    assert store.accounts_with_votes() == []
    near = carry_out(store, node.handle(Envelope(1, 0, Accept("alice", 0, Ballot(3, 1),
                                                                   b"v")), 0))
    assert near.writes


def test_a_peer_round_near_the_end_quarantines_one_account_not_the_node() -> None:
    # Following it pushed the node-wide round counter up: every account then ran out.
    node, store = new_node()
    carry_out(store, node.handle(Envelope(1, 0, Prepare("poisoned", 0, Ballot(MAX_ROUND - 3,
                                                                                1))), 0))
    ready = carry_out(store, node.propose("poisoned", b"mine", 0))
    (alarm,) = ready.alarms
    assert "refusing to follow it" in alarm.reason
    other = carry_out(store, node.propose("healthy", b"mine", 0))
    assert not other.alarms
    prepares = [e.message for e in other.messages if isinstance(e.message, Prepare)]
    assert prepares and prepares[0].ballot.round < 1_000_000
    assert store.reserved_round() < 1_000_000


def test_a_settle_that_finds_the_log_end_forgets_a_claimed_tail() -> None:
    from ledger.paxos import AccountTail, TailsReply
    from tests.support.paxos_network import LocalCluster

    cluster = LocalCluster(3, evict_idle_ms=1_000)
    # A member claims slots nobody chose: node 0 tries to catch up, then settles.
    claim = TailsReply("", (AccountTail("phantom", 50),), True)
    cluster.carry_out(0, cluster.nodes[0].handle(Envelope(1, 0, claim), cluster.now_ms))
    cluster.deliver()
    cluster.advance(12_000)
    assert "phantom" not in set(cluster.nodes[0]._accounts), "it left memory in the end"
    assert cluster.log(0, "phantom") == []
