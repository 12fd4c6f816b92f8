"""Disk faults in the simulator: a node's disk wiped or rolled back, then `ledger recover`'s
steps (see `ledger.paxos.rejoin`), as events of the simulation's queue."""

from __future__ import annotations

import copy
import random
from collections.abc import Callable
from typing import TYPE_CHECKING

from ledger.paxos.records import ChosenWrite, Write
from ledger.paxos.rejoin import Rejoin, RejoinReport
from ledger.sim.scenario import DiskFault, Scenario
from ledger.storage.memory import MemoryStore, MemoryTables

if TYPE_CHECKING:
    from ledger.sim.cluster import SimNode

REJOIN_RETRY_MS = 100  # a rejoining node asks the members that have not answered again


class DiskFaultEvents:
    """The disk-fault events of `Simulation` (a mixin: it owns the queue and the nodes)."""

    scenario: Scenario
    rng: random.Random
    now_ms: int
    nodes: list[SimNode]
    cut: set[tuple[int, int]]
    faults_over: bool
    # recorded[j][k]: the generation of node k that node j counts messages from (durable).
    recorded: list[list[int]]
    snapshots: dict[int, MemoryTables]  # disk images for rollbacks, by node
    _at: Callable[[int, str, object], None]
    _on_crash: Callable[[int], None]
    _start: Callable[[SimNode], None]

    def _on_snapshot(self, index: int) -> None:
        self.snapshots[index] = copy.deepcopy(self.nodes[index].store.synced)

    def _on_disk_fault(self, fault: DiskFault) -> None:
        """Kill the node, replace its disk, and begin rejoining as `ledger recover` does."""
        node = self.nodes[fault.node]
        if fault.kind == "rollback":
            image = self.snapshots.get(fault.node)
        elif fault.kind == "corrupt":
            image = self._without_one_account(node)
        else:
            image = None
        self._on_crash(fault.node)
        node.kept = image or MemoryTables()
        node.store = MemoryStore()
        node.generation += 1
        node.rejoin = Rejoin(fault.node, self.scenario.nodes)
        self._at(self.now_ms, "rejoin-ask", (fault.node, node.generation))

    def _without_one_account(self, node: SimNode) -> MemoryTables:
        """The node's disk with one account's records damaged: what `ledger recover` keeps
        of it (every other chosen value; the damaged account's none)."""
        image = copy.deepcopy(node.store.synced)
        if image.chosen:
            damaged = self.rng.choice(sorted(image.chosen))
            del image.chosen[damaged]
            image.digests.pop(damaged, None)
            image.sorted_accounts.remove(damaged)
        return image

    def _on_rejoin_ask(self, payload: tuple[int, int]) -> None:
        index, generation = payload
        node = self.nodes[index]
        if node.rejoin is None or node.generation != generation:
            return
        for other in node.rejoin.missing():
            if self._link_up(index, other):
                self._at(self.now_ms + 1 + self.rng.randrange(self.scenario.delay_ms),
                         "rejoin-arrive", (index, generation, other))
        self._at(self.now_ms + REJOIN_RETRY_MS, "rejoin-ask", payload)

    def _on_rejoin_arrive(self, payload: tuple[int, int, int]) -> None:
        """Node `other` records the new generation, forgets the former life, and reports."""
        index, generation, other = payload
        member = self.nodes[other]
        if member.core is None and member.rejoin is None:
            return  # down: the rejoining node asks again
        self.recorded[other][index] = max(self.recorded[other][index], generation)
        if member.core is not None:
            member.core.forget_peer(index)
        tails = member.store.recovery_tails("", 1 << 30)
        # A member that recovered earlier answers for its former life with its floor too.
        report = RejoinReport(other, max(member.store.max_promised_round(),
                                         member.store.round_floor(),
                                         member.store.reserved_round()),
                              {tail.account: tail.highest_slot for tail in tails})
        if self._link_up(other, index):
            self._at(self.now_ms + 1 + self.rng.randrange(self.scenario.delay_ms),
                     "rejoin-report", (index, generation, report))

    def _on_rejoin_report(self, payload: tuple[int, int, RejoinReport]) -> None:
        index, generation, report = payload
        node = self.nodes[index]
        if node.rejoin is None or node.generation != generation:
            return
        node.rejoin.on_report(report)
        if node.rejoin.complete:
            self._finish_rejoin(node)

    def _finish_rejoin(self, node: SimNode) -> None:
        """Write the kept chosen values, the floor and the fences; then serve again."""
        assert node.rejoin is not None and node.kept is not None
        kept: list[Write] = []
        kept_through: dict[str, int] = {}
        for account, values in node.kept.chosen.items():
            kept.extend(ChosenWrite(account, slot, value) for slot, value in enumerate(values))
            kept_through[account] = len(values) - 1
        node.store.stage([*kept, *self.recovery_writes(node.rejoin, kept_through)])
        node.store.sync()
        node.rejoin = None
        node.kept = None
        self._start(node)
        if node.client is not None:
            self._at(self.now_ms + 1, "client", node.index)

    def recovery_writes(self, rejoin: Rejoin, kept_through: dict[str, int]) -> list[Write]:
        """What a rejoining node writes before it serves (tests plant broken variants)."""
        return rejoin.writes(kept_through)

    def _link_up(self, source: int, destination: int) -> bool:
        """Would a message get through now (not cut, not lost)?"""
        if (source, destination) in self.cut:
            return False
        return self.faults_over or self.rng.random() >= self.scenario.loss

