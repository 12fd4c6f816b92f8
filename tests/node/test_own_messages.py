"""A node's own vote and what it leads to: the Accept leaves for the peers without
waiting for this node's vote to be durable, and nothing the vote is counted in (a
choice, its Learns, the proposer's outcome) leaves before it is."""

from __future__ import annotations

import asyncio
import concurrent.futures
import random

import pytest

from ledger.node.driver import NodeDriver
from ledger.paxos import Accept, Accepted, Envelope, Learn, PaxosConfig, Prepare, Promise
from ledger.storage.memory import MemoryStore
from tests.support.state_machines import AppliedSlots

WAIT_S = 5.0


class HeldFlushes(MemoryStore):
    """A store whose background flushes end only when the test says so."""

    def __init__(self) -> None:
        super().__init__(AppliedSlots.TABLES)
        self.pending: list[concurrent.futures.Future[None]] = []

    def flush_async(self) -> concurrent.futures.Future[None]:
        future: concurrent.futures.Future[None] = concurrent.futures.Future()
        self.pending.append(future)
        return future

    def release(self) -> None:
        self.sync()
        pending, self.pending = self.pending, []
        for future in pending:
            future.set_result(None)

    def holds_vote(self, account: str, slot: int) -> bool:
        """Our vote at `slot` is on disk (or the value chosen there, which replaces it)."""
        record = self.synced.account_record(account)
        return record.chosen_through >= slot or any(v.slot == slot for v in record.accepted)


class Peers:
    """Every message the node sends to its two peers, in order."""

    def __init__(self) -> None:
        self.sent: list[Envelope] = []
        self.changed = asyncio.Event()

    def send(self, peer: int, envelopes: list[Envelope]) -> None:
        self.sent.extend(envelopes)
        self.changed.set()

    def of(self, kind: type, peer: int = 1) -> list[Envelope]:
        return [e for e in self.sent if isinstance(e.message, kind) and e.destination == peer]

    async def wait_for(self, kind: type, count: int = 1) -> list[Envelope]:
        async with asyncio.timeout(WAIT_S):
            while len(self.of(kind)) < count:
                self.changed.clear()
                await self.changed.wait()
        return self.of(kind)


async def settle() -> None:
    for _ in range(20):  # turns take a few trips around the loop to start
        await asyncio.sleep(0)


@pytest.fixture
async def node() -> tuple[NodeDriver, HeldFlushes, Peers]:
    store, peers = HeldFlushes(), Peers()
    driver = NodeDriver(0, PaxosConfig(cluster_size=3), store, peers.send, random.Random(0),
                        AppliedSlots(store))
    task = asyncio.create_task(driver.run())
    yield driver, store, peers
    driver.stop()
    store.release()
    await asyncio.wait_for(task, timeout=WAIT_S)


async def lead(driver: NodeDriver, store: HeldFlushes, peers: Peers) -> asyncio.Task[object]:
    """Propose on account a and win its Prepare with peer 1's promise; returns the proposal."""
    proposal = asyncio.create_task(driver.propose("a", b"v", timeout_s=WAIT_S))
    await settle()
    await released_until(store, peers, Prepare)  # the round, then the Prepare leaves
    prepare = peers.of(Prepare)[0].message
    driver.receive([Envelope(1, 0, Promise("a", prepare.from_slot, prepare.ballot, (), (), -1))])
    await released_until(store, peers, Accept)  # our own promise: then the Accept leaves
    return proposal


async def released_until(store: HeldFlushes, peers: Peers, kind: type) -> None:
    """Let flushes end, one at a time, until the first message of `kind` has left."""
    async with asyncio.timeout(WAIT_S):
        while not peers.of(kind):
            store.release()
            await settle()


async def test_our_accept_leaves_before_our_own_vote_is_durable(
    node: tuple[NodeDriver, HeldFlushes, Peers],
) -> None:
    driver, store, peers = node
    proposal = await lead(driver, store, peers)
    accept = (await peers.wait_for(Accept))[0].message
    await settle()
    assert driver.counters.received["Accept"] == 1  # we voted too: it is not durable yet
    assert not store.holds_vote("a", accept.slot)
    store.release()
    await settle()
    assert store.holds_vote("a", accept.slot)
    driver.receive([Envelope(1, 0, Accepted("a", accept.slot, accept.ballot))])
    assert (await asyncio.wait_for(proposal, WAIT_S)).won  # type: ignore[attr-defined]


async def test_a_choice_our_unsynced_vote_counted_in_waits_for_its_flush(
    node: tuple[NodeDriver, HeldFlushes, Peers],
) -> None:
    driver, store, peers = node
    proposal = await lead(driver, store, peers)
    accept = (await peers.wait_for(Accept))[0].message
    # Peer 1's vote and our own (staged, not durable) make a majority in our count:
    # nothing may say so, to a peer or to the proposer, until our vote is on disk.
    driver.receive([Envelope(1, 0, Accepted("a", accept.slot, accept.ballot))])
    await settle()
    assert not store.holds_vote("a", accept.slot)
    assert peers.of(Learn, peer=2) == [] and not proposal.done()
    async with asyncio.timeout(WAIT_S):
        while not proposal.done():  # (the choice, staged after our vote, has its own flush)
            store.release()
            await settle()
    assert proposal.result().won  # type: ignore[attr-defined]
    assert store.holds_vote("a", accept.slot)
