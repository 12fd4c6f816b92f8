"""A node keeps its working set in memory, not every account it ever saw: idle accounts
leave (and come back from the store as they were), the table has a bound, and reads of
ids nobody opened leave nothing behind."""

from __future__ import annotations

from ledger.paxos import Ballot, Envelope, Nack, Prepare, Promise
from ledger.paxos.residency import EVICT_EVERY_MS
from tests.support.paxos_network import LocalCluster


def resident(cluster: LocalCluster, index: int) -> set[str]:
    return set(cluster.nodes[index]._accounts)


def test_a_read_of_an_id_nobody_opened_leaves_nothing_on_any_node() -> None:
    cluster = LocalCluster(3)
    nonce, ready = cluster.nodes[0].read_barrier("ghost", cluster.now_ms)
    cluster.carry_out(0, ready)
    cluster.deliver()
    cluster.advance(500)
    assert any(done.nonce == nonce for _, r in cluster.readies for done in r.barriers)
    assert all(resident(cluster, index) == set() for index in range(3))


def test_an_idle_account_leaves_memory_and_comes_back_as_it_was() -> None:
    cluster = LocalCluster(3, evict_idle_ms=1_000)
    cluster.propose(0, "alice", b"v0")
    cluster.deliver()
    assert "alice" in resident(cluster, 1)
    cluster.advance(1_000 + 2 * EVICT_EVERY_MS)
    assert "alice" not in resident(cluster, 1)
    # Its promise came back from the store: a lower ballot is still refused.
    promised = cluster.stores[1].account_record("alice").promised
    lower = Ballot(promised.round - 1, 2) if promised.round > 1 else None
    if lower is not None:
        ready = cluster.nodes[1].handle(Envelope(2, 1, Prepare("alice", 1, lower)),
                                        cluster.now_ms)
        assert isinstance(ready.messages[0].message, Nack)
    cluster.propose(1, "alice", b"v1")
    cluster.deliver()
    cluster.advance(100)
    assert cluster.log(2, "alice") == [b"v0", b"v1"]


def test_past_the_bound_the_least_recently_used_idle_accounts_leave() -> None:
    cluster = LocalCluster(3, max_accounts_in_memory=4)
    for index in range(10):
        cluster.propose(0, f"acct-{index}", b"v")
        cluster.deliver()
    cluster.advance(20)
    for node in range(3):
        assert len(resident(cluster, node)) <= 4
    assert resident(cluster, 0) >= {"acct-8", "acct-9"}  # the most recent stay
    assert all(cluster.log(2, f"acct-{index}") == [b"v"] for index in range(10))


def test_an_account_with_work_in_flight_stays_whatever_the_bound() -> None:
    cluster = LocalCluster(3, max_accounts_in_memory=1, evict_idle_ms=0)
    for index in range(3):
        cluster.propose(0, f"busy-{index}", b"v")  # Prepares sent, nothing delivered
    cluster.advance(0)
    for node in cluster.nodes[:1]:
        node.tick(cluster.now_ms + 5 * EVICT_EVERY_MS)
    assert resident(cluster, 0) == {"busy-0", "busy-1", "busy-2"}
    cluster.deliver()
    cluster.advance(100)
    assert all(cluster.log(1, f"busy-{index}") == [b"v"] for index in range(3))
    promises = cluster.sent(Promise)
    assert promises, "phase 1 ran for every account"
