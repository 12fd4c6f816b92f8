"""The driver answers a proposal's outcome and a read barrier only once their slot is
applied here: while applying is paused (an audit reading), or while the state machine
holds an entry back (a credit learned before its debit), they wait; a node holding
entries back catches up by itself on the accounts they wait for."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable

from ledger.accounts import Kind, Operation
from ledger.bank import codec
from ledger.node.driver import NodeDriver
from ledger.paxos import Envelope, PaxosConfig
from ledger.paxos.messages import TailQuery
from ledger.storage.memory import MemoryStore
from tests.support.in_process import Servers
from tests.support.state_machines import AppliedSlots


async def until(condition: Callable[[], bool], what: str, attempts: int = 200) -> None:
    for _ in range(attempts):
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting until {what}")


def entry(*operations: Operation) -> bytes:
    return codec.encode_entry(operations)


async def test_while_applying_is_paused_outcomes_and_reads_wait_for_it(
    servers: Servers,
) -> None:
    nodes = [await servers.start(i) for i in range(3)]
    driver, machine = nodes[0].driver, nodes[0].machine
    await driver.propose("p", entry(Operation(Kind.OPEN, 100, "open-p")), 5)
    driver.pause_applying()
    proposed = asyncio.create_task(
        driver.propose("p", entry(Operation(Kind.DEPOSIT, 5, "d1")), 5))
    read = asyncio.create_task(driver.read_barrier("p", 5))
    await until(lambda: nodes[1].machine.account("p").state.balance == 105,
                "another node applies the deposit")
    await until(lambda: driver._core.chosen_through("p") == 1, "node 1 learns it is chosen")
    await asyncio.sleep(0.2)  # turns go by: still nothing may answer
    assert not proposed.done() and not read.done()
    assert machine.account("p").state.balance == 100
    driver.resume_applying()
    outcome = await asyncio.wait_for(proposed, 5)
    assert outcome is not None and outcome.won and outcome.slot == 1
    assert machine.account("p").state.balance == 105
    assert await asyncio.wait_for(read, 5) >= 1


class Awaiting(AppliedSlots):
    """A state machine that holds entries back until account "src" is applied through 3."""

    def waiting_on(self) -> dict[str, int]:
        return {"src": 3} if self.applied_slot("src") < 3 else {}


async def test_a_node_holding_entries_back_catches_up_on_what_they_wait_for() -> None:
    """A credit waits for its debit's account: the node asks a majority how far that
    account reaches (a read barrier: the catch-up follows), once while it is in flight."""
    sent: list[Envelope] = []
    store = MemoryStore(AppliedSlots.TABLES)
    driver = NodeDriver(0, PaxosConfig(cluster_size=3), store,
                        lambda peer, envelopes: sent.extend(envelopes), random.Random(0),
                        Awaiting(store))
    task = asyncio.create_task(driver.run())
    try:
        await until(lambda: bool(sent), "the node asks its peers about src")
        await asyncio.sleep(0.2)
        driver._catch_up_awaited()  # again, while the first is in flight: no second round
        await asyncio.sleep(0.2)
        queries = [e for e in sent if isinstance(e.message, TailQuery)]
        assert {(e.message.account, e.destination) for e in queries} == {("src", 1), ("src", 2)}
        assert len({e.message.nonce for e in queries}) == 1
    finally:
        driver.stop()
        await task
