"""Randomised exponential backoff, so dueling proposers stop colliding."""

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
