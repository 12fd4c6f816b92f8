"""Scenarios: everything random about a simulated run, drawn from one seed."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Crash:
    at_ms: int
    node: int
    down_ms: int


@dataclass(frozen=True, slots=True)
class Partition:
    """From `at_ms` on, messages over the `cut` directed links are dropped."""

    at_ms: int
    cut: frozenset[tuple[int, int]]
    duration_ms: int


@dataclass(frozen=True, slots=True)
class DiskFault:
    """At `at_ms` node `node` is killed and its disk replaced: wiped, rolled back to the
    image it held at `snapshot_at_ms` (a restored backup), or found with one account's
    records damaged; then it rejoins as `ledger recover` does."""

    at_ms: int
    node: int
    kind: str  # "wipe", "rollback" or "corrupt"
    snapshot_at_ms: int


def split_links(groups: list[set[int]], size: int) -> frozenset[tuple[int, int]]:
    """Directed links between nodes that share no group."""
    return frozenset(
        (a, b) for a in range(size) for b in range(size)
        if a != b and not any(a in group and b in group for group in groups)
    )


def random_cut(rng: random.Random, size: int) -> frozenset[tuple[int, int]]:
    """A split in two, an isolated node, a bridge, or some one-way link failures."""
    members = list(range(size))
    rng.shuffle(members)
    shape = rng.choice(("split", "isolate", "bridge", "one-way"))
    if shape == "split":
        cut = rng.randrange(1, size)
        return split_links([set(members[:cut]), set(members[cut:])], size)
    if shape == "isolate":
        return split_links([{members[0]}, set(members[1:])], size)
    if shape == "bridge":
        middle, rest = members[0], members[1:]
        half = max(1, len(rest) // 2)
        return split_links([{middle, *rest[:half]}, {middle, *rest[half:]}], size)
    links = [(a, b) for a in range(size) for b in range(size) if a != b]
    return frozenset(rng.sample(links, rng.randrange(1, len(links) // 2 + 1)))


@dataclass(frozen=True, slots=True)
class Scenario:
    """One simulated run. Faults happen in [0, fault_window_ms); then all heal."""

    seed: int
    profile: str  # which fault profile the knobs were drawn from
    nodes: int
    accounts: tuple[str, ...]
    proposers: tuple[int, ...]  # node indices whose clients propose (dueling)
    values_per_proposer: int
    think_ms: int  # a client waits up to this long between its values
    loss: float  # probability a message between two nodes is lost
    duplication: float  # probability it is delivered twice
    delay_ms: int  # ordinary one-way delay ceiling
    straggler: float  # probability a message is held back for long (reordering)
    straggler_ms: int  # ceiling of such long delays
    sync_ms: int  # disk sync latency (0: synchronous); writes are lost if a crash comes first
    crashes: tuple[Crash, ...]
    crash_after_send: float  # chance a node dies right after sending a step's messages
    restart_ms: int  # how long a node killed that way stays down, at most
    partitions: tuple[Partition, ...]
    fault_window_ms: int
    settle_limit_ms: int  # after healing, everything must be decided within this
    fast_path: bool
    evict_idle_ms: int  # account state leaves memory after idling this long...
    max_accounts_in_memory: int  # ... or at once past this many
    disk_faults: tuple[DiskFault, ...] = ()

    @classmethod
    def from_seed(
        cls, seed: int, *, nodes: int | None = None, profile: str | None = None
    ) -> Scenario:
        """Draw a scenario. Seeds cycle through the fault profiles unless one is named."""
        profile = profile or PROFILES[seed % len(PROFILES)]
        assert profile in PROFILES, f"unknown profile {profile!r}; choose from {PROFILES}"
        rng = random.Random(seed)
        size = nodes if nodes is not None else rng.choice((3, 3, 5))
        window_ms = rng.randrange(1_500, 4_000)
        draw = _PROFILE_DRAWS[profile]
        return cls(
            seed=seed,
            profile=profile,
            nodes=size,
            accounts=tuple(f"acct-{i}" for i in range(rng.choice((1, 1, 2)))),
            proposers=tuple(sorted(rng.sample(range(size), min(size, draw.proposers(rng))))),
            values_per_proposer=rng.randrange(3, 10),
            think_ms=rng.choice(draw.think_ms),
            loss=rng.choice(draw.loss),
            duplication=rng.choice((0.0, 0.02, 0.1)),
            delay_ms=rng.choice(draw.delay_ms),
            straggler=rng.choice(draw.straggler),
            straggler_ms=rng.randrange(100, 1_500),
            sync_ms=rng.choice((0, 0, 1, 3)),
            crashes=tuple(
                Crash(rng.randrange(window_ms), rng.randrange(size), rng.randrange(20, 1_200))
                for _ in range(rng.choice(draw.crashes))
            ),
            crash_after_send=rng.choice(draw.crash_after_send),
            restart_ms=rng.choice(draw.restart_ms),
            partitions=_partitions(rng, size, window_ms, rng.choice(draw.partitions)),
            fault_window_ms=window_ms,
            settle_limit_ms=60_000,
            fast_path=rng.random() < 0.7,
            # Drawn last, so that every earlier draw stays what the seed always gave.
            evict_idle_ms=rng.choice((30_000, 30_000, 300, 50)),
            max_accounts_in_memory=rng.choice((10_000, 10_000, 1)),
            disk_faults=_disk_faults(rng, size, window_ms, rng.choice(draw.disk_faults)),
        )


@dataclass(frozen=True, slots=True)
class _Draw:
    """The choices one fault profile draws its knobs from."""

    proposers: Callable[[random.Random], int]
    think_ms: tuple[int, ...]
    loss: tuple[float, ...]
    delay_ms: tuple[int, ...]
    straggler: tuple[float, ...]
    crashes: tuple[int, ...]
    crash_after_send: tuple[float, ...]
    restart_ms: tuple[int, ...]
    partitions: tuple[int, ...]  # how many, back to back
    disk_faults: tuple[int, ...] = (0,)  # how many nodes lose their disk (a minority)


_PROFILE_DRAWS = {
    # A bit of everything.
    "mixed": _Draw(
        proposers=lambda rng: rng.choice((1, 2, 2, 3)), think_ms=(0, 10, 50, 300),
        loss=(0.0, 0.05, 0.1, 0.2, 0.3), delay_ms=(2, 10, 30, 150),
        straggler=(0.0, 0.01, 0.05, 0.3), crashes=(0, 1, 2, 4),
        crash_after_send=(0.0, 0.003, 0.01, 0.03), restart_ms=(10, 30, 100, 500),
        partitions=(0, 1, 2),
    ),
    # Nodes die right after sending and come back while their old messages are still
    # in flight: what breaks a node that forgets promises or reuses ballots.
    "crashes": _Draw(
        proposers=lambda rng: rng.choice((1, 2, 2)), think_ms=(0, 10),
        loss=(0.0, 0.1, 0.2), delay_ms=(30, 150), straggler=(0.05, 0.3), crashes=(0, 1),
        crash_after_send=(0.05, 0.1, 0.2), restart_ms=(10, 30, 100), partitions=(0,),
    ),
    # The network splits, isolates, bridges and drops one-way links, over and over.
    "partitions": _Draw(
        proposers=lambda rng: rng.choice((2, 3)), think_ms=(0, 10, 50),
        loss=(0.0, 0.1, 0.3), delay_ms=(2, 10, 30), straggler=(0.0, 0.05), crashes=(0, 1, 2),
        crash_after_send=(0.0, 0.01), restart_ms=(30, 100, 500), partitions=(4, 8, 12),
    ),
    # Heavy loss, duplication and reordering; nothing dies.
    "lossy": _Draw(
        proposers=lambda rng: rng.choice((2, 3)), think_ms=(0, 10, 50),
        loss=(0.2, 0.3), delay_ms=(10, 30, 150), straggler=(0.05, 0.3), crashes=(0,),
        crash_after_send=(0.0,), restart_ms=(100,), partitions=(0,),
    ),
    # A minority of nodes lose their disk (wiped, or rolled back to an older image) while
    # their old messages are still in flight, and rejoin as `ledger recover` does.
    "disks": _Draw(
        proposers=lambda rng: rng.choice((2, 3)), think_ms=(0, 10),
        loss=(0.0, 0.1, 0.2), delay_ms=(10, 30, 150), straggler=(0.05, 0.3),
        crashes=(0, 1), crash_after_send=(0.0, 0.01), restart_ms=(10, 100),
        partitions=(0, 1), disk_faults=(1, 1, 2),
    ),
}

PROFILES = tuple(_PROFILE_DRAWS)


def _disk_faults(
    rng: random.Random, size: int, window_ms: int, count: int
) -> tuple[DiskFault, ...]:
    """`count` disk faults on distinct nodes, never more than a minority."""
    faults = []
    for node in rng.sample(range(size), min(count, (size - 1) // 2)):
        at_ms = rng.randrange(100, window_ms)
        faults.append(DiskFault(at_ms, node, rng.choice(("wipe", "rollback", "corrupt")),
                                rng.randrange(0, at_ms)))
    return tuple(faults)


def _partitions(
    rng: random.Random, size: int, window_ms: int, count: int
) -> tuple[Partition, ...]:
    """`count` partitions back to back from a random moment, each 50-400 ms (or longer alone)."""
    partitions = []
    at_ms = rng.randrange(window_ms)
    for _ in range(count):
        duration_ms = rng.randrange(50, 400) if count > 2 else rng.randrange(50, 1_500)
        partitions.append(Partition(at_ms, random_cut(rng, size), duration_ms))
        at_ms = (at_ms + duration_ms + rng.randrange(0, 200)) % window_ms
    return tuple(partitions)
