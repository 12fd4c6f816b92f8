"""The core's randomness: backoff, jitter and picking a peer, all from an injected source.

Randomised exponential backoff makes dueling proposers stop colliding; jitter
keeps nodes from acting in step; a random peer spreads catch-up requests.
"""

from __future__ import annotations

from typing import Protocol


class RandomSource(Protocol):
    """The only randomness the core uses; the node injects a seeded one."""

    def random(self) -> float:
        """A float in [0, 1)."""
        ...


def backoff_ms(attempt: int, rng: RandomSource, base_ms: int, cap_ms: int) -> int:
    """Delay before retry number `attempt` (0-based): half fixed, half jitter.

    The ceiling doubles with every attempt up to `cap_ms`, so two proposers that
    keep preempting each other soon pick delays far enough apart for one to win.
    """
    assert attempt >= 0 and 0 < base_ms <= cap_ms
    ceiling_ms = min(cap_ms, base_ms << min(attempt, 30))
    return ceiling_ms // 2 + int(rng.random() * (ceiling_ms - ceiling_ms // 2)) + 1


def jitter_ms(rng: RandomSource, span_ms: int) -> int:
    """A random delay in [0, span_ms)."""
    return int(rng.random() * span_ms)


def random_peer(rng: RandomSource, node_index: int, cluster_size: int) -> int:
    """Any node of the cluster but `node_index`, uniformly."""
    assert cluster_size > 1  # callers ask only when there are peers
    offset = 1 + int(rng.random() * (cluster_size - 1))
    return (node_index + offset) % cluster_size
