"""Run one scenario: nodes, a lossy network, crashes and partitions on virtual time.

Each node is a `PaxosNode` over a `MemoryStore`, driven exactly as a real node
is: stage the Ready's writes, sync them (after the scenario's disk latency),
then send its messages, then apply its commits. A crash drops everything not
yet synced; a restart builds a new core from the synced store.
"""

from __future__ import annotations

import heapq
import random
import traceback
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from ledger.paxos.config import PaxosConfig
from ledger.paxos.errors import Quarantined
from ledger.paxos.messages import Envelope
from ledger.paxos.node import PaxosNode
from ledger.paxos.ready import BarrierDone, Outcome, Ready
from ledger.paxos.records import AcceptWrite, DurableView
from ledger.paxos.rejoin import Rejoin
from ledger.sim.checker import SafetyChecker
from ledger.sim.disks import DiskFaultEvents
from ledger.sim.scenario import Partition, Scenario
from ledger.storage.memory import MemoryStore, MemoryTables

NodeFactory = Callable[[int, PaxosConfig, DurableView, random.Random, int], PaxosNode]
StoreFactory = Callable[[], MemoryStore]

READ_CHANCE = 0.25  # a client reads (through a read barrier) instead of writing next
CHECK_EVERY_MS = 250  # how often the settled state is checked once faults are over
MAX_EVENTS = 2_000_000  # a run that needs more is reported, not left to spin


@dataclass(slots=True)
class SimResult:
    seed: int
    violations: list[str]
    events: int
    end_ms: int
    chosen: int  # slots chosen across accounts

    @property
    def ok(self) -> bool:
        return not self.violations


@dataclass(slots=True)
class Client:
    """Proposes its values one at a time, retrying at the next slot after a loss;
    between values it sometimes reads an account through a read barrier."""

    queue: deque[tuple[str, bytes]]
    in_flight: tuple[str, bytes] | None = None
    done: list[tuple[str, int, bytes]] = field(default_factory=list)
    reading: tuple[str, int, int] | None = None  # (account, nonce, lowest acceptable slot)
    reads: int = 0


@dataclass(slots=True)
class SimNode:
    index: int
    store: MemoryStore
    client: Client | None
    core: PaxosNode | None = None
    incarnation: int = 0
    unsynced: list[Ready] = field(default_factory=list)  # held until the next sync
    staged_votes: list[AcceptWrite] = field(default_factory=list)
    gating: bool = False  # promises or votes are staged but not yet durable
    sync_at_ms: int | None = None
    tick_at_ms: int | None = None
    generation: int = 0  # of the data directory's incarnation (`ledger recover` adds one)
    rejoin: Rejoin | None = None  # while it rejoins after losing its disk
    kept: MemoryTables | None = None  # the image it rejoins with (chosen values only kept)


class Simulation(DiskFaultEvents):
    def __init__(
        self,
        scenario: Scenario,
        node_factory: NodeFactory = PaxosNode,
        store_factory: StoreFactory = MemoryStore,
        stop_at_first: bool = True,
    ) -> None:
        self.scenario = scenario
        self.stop_at_first = stop_at_first
        self.node_factory = node_factory
        self.rng = random.Random(scenario.seed ^ 0x5EED)
        self.config = PaxosConfig(cluster_size=scenario.nodes, fast_path=scenario.fast_path,
                                  evict_idle_ms=scenario.evict_idle_ms,
                                  max_accounts_in_memory=scenario.max_accounts_in_memory)
        self.checker = SafetyChecker(scenario.nodes)
        self.now_ms = 0
        self.events = 0
        self._queue: list[tuple[int, int, str, object]] = []
        self._seq = 0
        self.cut: set[tuple[int, int]] = set()  # directed links that drop everything
        self.faults_over = False
        self.acknowledged: dict[str, int] = {}  # highest slot acknowledged per account
        self.nodes: list[SimNode] = []
        # recorded[j][k]: the generation of node k that node j counts messages from (durable).
        self.recorded = [[0] * scenario.nodes for _ in range(scenario.nodes)]
        self.snapshots: dict[int, MemoryTables] = {}  # disk images for rollbacks, by node
        for index in range(scenario.nodes):
            client = None
            if index in scenario.proposers:
                values = deque(
                    (scenario.accounts[(index + i) % len(scenario.accounts)],
                     f"n{index}-v{i}".encode())
                    for i in range(scenario.values_per_proposer)
                )
                client = Client(values)
            self.nodes.append(SimNode(index, store_factory(), client))

    # ----------------------------------------------------------------- running

    def run(self) -> SimResult:
        scenario = self.scenario
        for node in self.nodes:
            self._start(node)
        for node in self.nodes:
            if node.client is not None:
                self._at(self.rng.randrange(0, 200), "client", node.index)
        for crash in scenario.crashes:
            self._at(crash.at_ms, "crash", crash.node)
            self._at(crash.at_ms + crash.down_ms, "restart", crash.node)
        for fault in scenario.disk_faults:
            self._at(fault.snapshot_at_ms, "snapshot", fault.node)
            self._at(fault.at_ms, "disk-fault", fault)
        for partition in scenario.partitions:
            self._at(partition.at_ms, "partition", partition)
            self._at(partition.at_ms + partition.duration_ms, "heal", None)
        self._at(scenario.fault_window_ms, "faults-over", None)
        deadline_ms = scenario.fault_window_ms + scenario.settle_limit_ms
        try:
            self._loop(deadline_ms)
        except AssertionError as error:
            frame = traceback.extract_tb(error.__traceback__)[-1]
            self.checker.violation(
                self.now_ms,
                f"assertion failed at {frame.filename}:{frame.lineno}: {error}",
            )
        return SimResult(scenario.seed, self.checker.violations, self.events, self.now_ms,
                         len(self.checker.chosen))

    def _loop(self, deadline_ms: int) -> None:
        while self._queue and not (self.stop_at_first and self.checker.violations):
            at_ms, _, kind, payload = heapq.heappop(self._queue)
            if at_ms > deadline_ms:
                break
            self.now_ms = at_ms
            self.events += 1
            if self.events > MAX_EVENTS:
                self.checker.violation(at_ms, f"liveness: more than {MAX_EVENTS} events")
                return
            if kind == "check":
                if self._settled():
                    return
                self._at(at_ms + CHECK_EVERY_MS, "check", None)
                continue
            getattr(self, "_on_" + kind.replace("-", "_"))(payload)
        if not self.checker.violations:
            self.checker.violation(self.now_ms, "liveness: " + self._unsettled_reason())
        # (with stop_at_first off, a run with violations ends at its deadline)

    def _at(self, at_ms: int, kind: str, payload: object) -> None:
        self._seq += 1
        heapq.heappush(self._queue, (at_ms, self._seq, kind, payload))

    # ------------------------------------------------------------------ events

    def _on_deliver(self, payload: tuple[Envelope, int]) -> None:
        envelope, generation = payload
        node = self.nodes[envelope.destination]
        if node.core is None or (envelope.source, envelope.destination) in self.cut:
            return
        if generation < self.recorded[envelope.destination][envelope.source]:
            return  # from a former life of the sender's data directory: refused
        self._process(node, node.core.handle(envelope, self.now_ms))

    def _on_tick(self, payload: tuple[int, int]) -> None:
        index, incarnation = payload
        node = self.nodes[index]
        if node.core is None or node.incarnation != incarnation:
            return
        if node.tick_at_ms != self.now_ms:
            return  # superseded by an earlier tick
        node.tick_at_ms = None
        self._process(node, node.core.tick(self.now_ms))

    def _on_sync(self, payload: tuple[int, int]) -> None:
        index, incarnation = payload
        node = self.nodes[index]
        if node.incarnation == incarnation and node.core is not None:
            self._sync(node)

    def _on_client(self, index: int) -> None:
        node = self.nodes[index]
        client = node.client
        assert client is not None
        if node.core is None or client.in_flight is not None or client.reading is not None:
            return
        if not client.queue:
            return
        if self.rng.random() < READ_CHANCE:
            self._read(node, client, self.rng.choice(self.scenario.accounts))
            return
        account, value = client.queue.popleft()
        # A retry after a crash is a new attempt with a new value, as a real client's would be.
        value = value.split(b"@")[0] + b"@%d" % node.incarnation
        client.in_flight = (account, value)
        self._propose(node, account, value)

    def _read(self, node: SimNode, client: Client, account: str) -> None:
        """A linearizable read must see every write acknowledged before it began."""
        assert node.core is not None
        try:
            nonce, ready = node.core.read_barrier(account, self.now_ms)
        except Quarantined as quarantined:
            self.checker.violation(self.now_ms, f"node {node.index} read a quarantined account "
                                                f"{account}: {quarantined}")
            return
        client.reading = (account, nonce, self.acknowledged.get(account, -1))
        self._process(node, ready)

    def _on_barrier(self, node: SimNode, done: BarrierDone) -> None:
        client = node.client
        if client is None or client.reading is None or client.reading[:2] != (
            done.account, done.nonce
        ):
            return
        lowest = client.reading[2]
        if done.slot < lowest:
            self.checker.violation(
                self.now_ms,
                f"linearizability: node {node.index} read {done.account} through slot "
                f"{done.slot}, but slot {lowest} was acknowledged before the read began",
            )
        client.reading = None
        client.reads += 1
        self._at(self.now_ms, "client", node.index)

    def _on_crash(self, index: int) -> None:
        node = self.nodes[index]
        if node.core is None:
            return
        node.store.crash()
        node.core = None
        node.incarnation += 1
        node.unsynced.clear()
        node.staged_votes.clear()
        node.gating = False
        node.sync_at_ms = None
        node.tick_at_ms = None
        client = node.client
        if client is not None and client.in_flight is not None:
            client.queue.appendleft(client.in_flight)  # its outcome is unknown: try again
            client.in_flight = None
        if client is not None:
            client.reading = None

    def _on_restart(self, index: int) -> None:
        node = self.nodes[index]
        if node.core is None and node.rejoin is None:
            self._start(node)
            if node.client is not None:
                self._at(self.now_ms + 1, "client", index)

    def _on_partition(self, partition: object) -> None:
        assert isinstance(partition, Partition)
        self.cut = set(partition.cut)

    def _on_heal(self, _: object) -> None:
        self.cut = set()

    def _on_faults_over(self, _: object) -> None:
        self.faults_over = True
        self.cut = set()
        for node in self.nodes:
            if node.core is None:
                self._on_restart(node.index)
        self._at(self.now_ms + CHECK_EVERY_MS, "check", None)

    # ------------------------------------------------------------- node driver

    def _start(self, node: SimNode) -> None:
        life = f"{self.scenario.seed}/{node.index}/{node.incarnation}"
        node_rng = random.Random(life + (f"/{node.generation}" if node.generation else ""))
        node.core = self.node_factory(node.index, self.config, node.store, node_rng, self.now_ms)
        self._schedule_tick(node)

    def _propose(self, node: SimNode, account: str, value: bytes) -> None:
        assert node.core is not None
        self.checker.on_propose(value)
        try:
            ready = node.core.propose(account, value, self.now_ms)
        except Quarantined as quarantined:
            # Only a broken cluster quarantines an account; the alarm was recorded.
            self.checker.violation(self.now_ms, f"node {node.index} proposed on a quarantined "
                                                f"account {account}: {quarantined}")
            return
        self._process(node, ready)

    def _process(self, node: SimNode, ready: Ready) -> None:
        """Stage at once; send and apply once every promise and vote staged so far is
        durable (chosen values may trail, as the real driver lets them)."""
        for alarm in ready.alarms:  # a correct cluster never raises one
            self.checker.violation(self.now_ms, f"alarm on node {node.index}, account "
                                                f"{alarm.account}: {alarm.reason}")
        node.store.stage(ready.writes)
        node.staged_votes.extend(w for w in ready.writes if isinstance(w, AcceptWrite))
        node.gating |= ready.gates_sends
        if node.gating:
            node.unsynced.append(ready)
        if ready.writes or node.gating:
            if self.scenario.sync_ms == 0:
                self._sync(node)
            elif node.sync_at_ms is None:
                node.sync_at_ms = self.now_ms + self.scenario.sync_ms
                self._at(node.sync_at_ms, "sync", (node.index, node.incarnation))
        if not node.gating and node.core is not None:
            self._release(node, [ready])
        self._schedule_tick(node)

    def _sync(self, node: SimNode) -> None:
        node.store.sync()
        node.sync_at_ms = None
        node.gating = False
        for write in node.staged_votes:
            self.checker.on_durable_vote(self.now_ms, node.index, write.account,
                                         write.slot, write.ballot, write.value)
        node.staged_votes.clear()
        released, node.unsynced = node.unsynced, []
        self._release(node, released)

    def _release(self, node: SimNode, released: list[Ready]) -> None:
        for ready in released:
            for envelope in ready.messages:
                self._send(envelope)
            if ready.messages and self._crash_now():
                self._on_crash(node.index)
                restart_ms = 1 + self.rng.randrange(self.scenario.restart_ms)
                self._at(self.now_ms + restart_ms, "restart", node.index)
                return
            for committed in ready.committed:
                self.checker.on_learned(self.now_ms, node.index, committed.account,
                                        committed.slot, committed.value)
            for outcome in ready.outcomes:
                self._on_outcome(node, outcome)
            for done in ready.barriers:
                self._on_barrier(node, done)

    def _crash_now(self) -> bool:
        """Kill a node right after it sent (before it applied): the most revealing moment."""
        chance = self.scenario.crash_after_send
        return not self.faults_over and chance > 0 and self.rng.random() < chance

    def _on_outcome(self, node: SimNode, outcome: Outcome) -> None:
        client = node.client
        if client is None or client.in_flight != (outcome.account, outcome.proposed):
            return
        if outcome.won:
            client.done.append((outcome.account, outcome.slot, outcome.proposed))
            self.acknowledged[outcome.account] = max(
                self.acknowledged.get(outcome.account, -1), outcome.slot)
            client.in_flight = None
            think_ms = self.rng.randrange(self.scenario.think_ms + 1)
            self._at(self.now_ms + think_ms, "client", node.index)
        else:
            self._propose(node, outcome.account, outcome.proposed)

    def _schedule_tick(self, node: SimNode) -> None:
        if node.core is None:
            return
        due_ms = max(node.core.next_timer_ms(), self.now_ms)
        if node.tick_at_ms is None or due_ms < node.tick_at_ms:
            node.tick_at_ms = due_ms
            self._at(due_ms, "tick", (node.index, node.incarnation))

    # ----------------------------------------------------------------- network

    def _send(self, envelope: Envelope) -> None:
        scenario = self.scenario
        sender = self.nodes[envelope.source]
        self.checker.on_send(self.now_ms, envelope, sender.store.synced)
        payload = (envelope, sender.generation)
        if envelope.source == envelope.destination:
            self._at(self.now_ms + self.rng.randrange(0, 2), "deliver", payload)
            return
        faulty = not self.faults_over
        if faulty and self.rng.random() < scenario.loss:
            return
        copies = 2 if faulty and self.rng.random() < scenario.duplication else 1
        for _ in range(copies):
            delay_ms = 1 + self.rng.randrange(scenario.delay_ms)
            if faulty and self.rng.random() < scenario.straggler:
                delay_ms += self.rng.randrange(scenario.straggler_ms)
            self._at(self.now_ms + delay_ms, "deliver", payload)

    # ---------------------------------------------------------------- liveness

    def _settled(self) -> bool:
        return not self._unsettled_reason()

    def _unsettled_reason(self) -> str:
        for node in self.nodes:
            client = node.client
            if client is not None and (client.queue or client.in_flight is not None):
                return f"node {node.index}'s client still has undecided values"
            if client is not None and client.reading is not None:
                return f"node {node.index}'s client is still waiting for a read barrier"
        for node in self.nodes:
            if node.store.accounts_with_votes():
                return f"node {node.index} holds votes at undecided slots"
        for account in self.scenario.accounts:
            logs = {tuple(n.store.chosen_values(account, 0, 1 << 30)) for n in self.nodes}
            if len(logs) > 1:
                return f"replicas disagree on the log of {account}"
        for node in self.nodes:
            if node.unsynced:
                return f"node {node.index} has unsynced writes"
        return ""


def run_scenario(
    scenario: Scenario,
    node_factory: NodeFactory = PaxosNode,
    store_factory: StoreFactory = MemoryStore,
    stop_at_first: bool = True,
) -> SimResult:
    """Run one scenario to its end; violations name the seed's failing checks."""
    return Simulation(scenario, node_factory, store_factory, stop_at_first).run()


def run_seed(
    seed: int,
    node_factory: NodeFactory = PaxosNode,
    store_factory: StoreFactory = MemoryStore,
    *,
    nodes: int | None = None,
    profile: str | None = None,
    stop_at_first: bool = True,
) -> SimResult:
    """Run the scenario drawn from `seed` (optionally forcing its size or fault profile)."""
    scenario = Scenario.from_seed(seed, nodes=nodes, profile=profile)
    return run_scenario(scenario, node_factory, store_factory, stop_at_first)
