"""How much work a node did since it started: for operators (`ledger status`) and benchmarks."""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

#: How long a group commit's flush (one commit, one fsync) took: a fast disk's 0.1 ms
#: up to a struggling one's second.
FLUSH_SECONDS_BOUNDS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                        0.1, 0.25, 1.0)
#: How many writes one flush made durable (promises, votes, chosen values, applied state).
FLUSH_WRITES_BOUNDS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096, 16384)


@dataclass(slots=True)
class Histogram:
    """Observations counted into fixed buckets: a list increment each, nothing more.
    `counts[i]` holds those <= bounds[i] (and above the bound before); the last, the rest.
    Prometheus' cumulative form is built when it is read, not when it is kept."""

    bounds: tuple[float, ...]
    counts: list[int] = field(default_factory=list)
    total: float = 0.0

    def __post_init__(self) -> None:
        assert list(self.bounds) == sorted(set(self.bounds)), "bounds rise"
        if not self.counts:
            self.counts = [0] * (len(self.bounds) + 1)
        assert len(self.counts) == len(self.bounds) + 1

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value

    def cumulative(self) -> tuple[list[tuple[float, int]], float]:
        """(upper bound, observations at most that) for every bound and +Inf; the sum."""
        buckets: list[tuple[float, int]] = []
        running = 0
        for bound, count in zip((*self.bounds, float("inf")), self.counts, strict=True):
            running += count
            buckets.append((bound, running))
        return buckets, self.total


@dataclass(slots=True)
class DriverCounters:
    turns: int = 0
    syncs: int = 0
    messages: int = 0  # handled by the core
    proposals: int = 0
    applied: int = 0  # log entries applied since start (not counting startup's re-apply)
    last_flush_ms: int = 0  # how long the last flush took
    alarms: int = 0  # accounts quarantined on an alarm
    unreadable_accounts: int = 0  # accounts quarantined now because a record is damaged
    repaired_values: int = 0  # damaged chosen values put back from a peer's copy
    received: Counter[str] = field(default_factory=Counter)  # messages handled, by kind
    flush_seconds: Histogram = field(default_factory=lambda: Histogram(FLUSH_SECONDS_BOUNDS))
    flush_writes: Histogram = field(default_factory=lambda: Histogram(FLUSH_WRITES_BOUNDS))
    # Counters of the parts around the driver (transport, bank), merged into the view.
    extra: Callable[[], dict[str, int]] = dict

    def as_dict(self) -> dict[str, int]:
        return {"turns": self.turns, "syncs": self.syncs, "messages": self.messages,
                "proposals": self.proposals, "applied": self.applied, "alarms": self.alarms,
                "unreadable_accounts": self.unreadable_accounts,
                "repaired_values": self.repaired_values,
                **self.extra(),
                **{f"received_{kind}": count for kind, count in self.received.items()}}
