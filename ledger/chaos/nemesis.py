"""Nemeses: kill, pause, partition, packet loss and disk loss, injected while the workload runs.

One fault at a time: inject, let the workload run, heal everything, rest, again. The
disk nemesis (see `ledger.chaos.disk`) harms one node's data directory, checks that
`ledger serve` refuses it, and recovers it with `ledger recover` at the heal.
"""

from __future__ import annotations

import pathlib
import random
import threading
from collections.abc import Callable

from ledger.chaos.checker import Violation
from ledger.chaos.disk import HARMS, Disks
from ledger.chaos.history import FaultEvent
from ledger.chaos.netns import Topology
from ledger.tools.localcluster import ProcessCluster

NEMESES = ("kill", "pause", "partition", "loss", "disk")
NETWORK_NEMESES = ("partition", "loss")


class Nemesis:
    """Injects one fault at a time, heals it, rests, and again, until told to stop."""

    def __init__(self, cluster: ProcessCluster, kinds: list[str], seed: int,
                 now_ms: Callable[[], float], topology: Topology | None = None,
                 copies_dir: pathlib.Path | None = None) -> None:
        unknown = set(kinds) - set(NEMESES)
        assert not unknown, f"unknown nemeses {unknown}"
        assert topology is not None or not set(kinds) & set(NETWORK_NEMESES)
        self.cluster = cluster
        self.kinds = kinds
        self.rng = random.Random(f"nemesis/{seed}")
        self.now_ms = now_ms
        self.topology = topology
        self.events: list[FaultEvent] = []
        # What the nemeses saw go wrong (a harmed directory served, a tool that failed):
        # the run fails with these beside the checker's violations.
        self.failures: list[Violation] = []
        self._killed: set[int] = set()
        self._paused: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.disks = Disks(cluster, copies_dir or cluster.base_dir / "copies", self._note,
                           self._fail, now_ms, self._stop)

    @property
    def size(self) -> int:
        return len(self.cluster.nodes)

    def start(self) -> None:
        self._thread.start()

    def stop_and_heal(self) -> None:
        """Stop injecting; heal the network, resume, recover and restart every node."""
        self._stop.set()
        self._thread.join()
        try:
            self._heal_all()
        except Exception as error:
            self._fail("nemesis", f"healing failed: {type(error).__name__}: {error}")

    def _note(self, kind: str, detail: str = "") -> None:
        self.events.append(FaultEvent(self.now_ms(), kind, detail))

    def _fail(self, node: str, detail: str) -> None:
        self.failures.append(Violation("nemesis", node, detail))

    def _run(self) -> None:
        try:
            self._loop()
        except Exception as error:  # stop injecting; the run reports it and fails
            self._fail("nemesis", f"stopped injecting: {type(error).__name__}: {error}")

    def _loop(self) -> None:
        order: list[str] = []
        while not self._stop.wait(self.rng.uniform(0.3, 1.5)):
            if not order:  # every kind once, in a fresh random order, then again
                order = list(self.kinds)
                self.rng.shuffle(order)
            kind = order.pop()
            getattr(self, f"_inject_{kind}")()
            if self._stop.wait(self.rng.uniform(1.0, 3.0)):
                break
            self._heal_all()

    def _minority(self) -> list[int]:
        """One node, or sometimes as many as leave a majority up."""
        largest = (self.size - 1) // 2
        count = largest if largest > 1 and self.rng.random() < 0.3 else 1
        return sorted(self.rng.sample(range(self.size), count))

    def _names(self, indices: list[int]) -> str:
        return ",".join(self.cluster.nodes[i].node_id for i in indices)

    def _inject_kill(self) -> None:
        victims = self._minority()
        for index in victims:
            self.cluster.kill(index)
            self._killed.add(index)
        self._note("kill", self._names(victims))

    def _inject_pause(self) -> None:
        victims = self._minority()
        for index in victims:
            self.cluster.pause(index)
            self._paused.add(index)
        self._note("pause", self._names(victims))

    def _inject_partition(self) -> None:
        assert self.topology is not None
        nodes = list(range(self.size))
        self.rng.shuffle(nodes)
        shape = self.rng.choice(("isolate", "split", "bridge"))
        if shape == "isolate":
            groups = [nodes[:1], nodes[1:]]
        elif shape == "split":
            cut = self.rng.randrange(1, self.size // 2 + 1)
            groups = [nodes[:cut], nodes[cut:]]
        else:  # two sides that each see a middle node, but not each other
            middle, rest = nodes[0], nodes[1:]
            half = len(rest) // 2
            groups = [[middle, *rest[:half]], [middle, *rest[half:]]]
        self.topology.partition(groups)
        self._note("partition", f"{shape}: " + " | ".join(self._names(sorted(g)) for g in groups))

    def _inject_loss(self) -> None:
        assert self.topology is not None
        percent = self.rng.choice((10, 20, 30, 40))
        self.topology.lose(percent)
        self._note("loss", f"{percent}% of packets between nodes")

    def _down(self) -> set[int]:
        """Nodes some nemesis has down: killed, paused, or waiting for `ledger recover`."""
        return self._killed | self._paused | self.disks.harmed

    def _inject_disk(self) -> None:
        # The previous heal starts nodes without waiting; a stopped copy, the check that
        # `ledger serve` refuses the harmed directory and `ledger recover` all need every
        # other member answering (a rollback is only detected by a member that answers).
        down = self._down()
        for index in range(self.size):
            if index not in down:
                self.cluster.wait_ready(index)
        victim = self.rng.choice([i for i in range(self.size) if i not in down])
        how = self.rng.choice(HARMS)
        fresh_copy = self.rng.random() < 0.5
        assert len(down) + 1 <= (self.size - 1) // 2, (
            f"disk: {self._names(sorted(down))} already down; one more is not a minority")
        self.disks.harm(victim, how, self.rng.choice, fresh_copy)

    def _heal_all(self) -> None:
        if self.topology is not None:
            self.topology.heal()
        for index in sorted(self._paused):
            self.cluster.resume(index)
            self._note("resume", self._names([index]))
        self._paused.clear()
        for index in sorted(self._killed):
            self.cluster.start_node(index, wait=False)
            self._note("restart", self._names([index]))
        self._killed.clear()
        for index in sorted(self.disks.harmed):  # every other member is up or starting
            self.disks.recover(index)
        self._note("heal")
