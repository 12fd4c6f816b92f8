from __future__ import annotations

import random

from ledger.paxos.backoff import backoff_ms


def test_backoff_ceiling_doubles_per_attempt_up_to_the_cap() -> None:
    class Highest:
        def random(self) -> float:
            return 0.999999

    delays = [backoff_ms(attempt, Highest(), base_ms=10, cap_ms=100) for attempt in range(6)]
    assert delays == [10, 20, 40, 80, 100, 100]


def test_backoff_is_jittered_within_the_upper_half_of_the_ceiling() -> None:
    rng = random.Random(7)
    delays = {backoff_ms(3, rng, base_ms=10, cap_ms=1_000) for _ in range(200)}
    assert min(delays) >= 40 and max(delays) <= 81
    assert len(delays) > 10  # two proposers rarely draw the same delay


def test_backoff_is_deterministic_for_a_seeded_source() -> None:
    first = [backoff_ms(a, random.Random(1), 10, 1_000) for a in range(8)]
    second = [backoff_ms(a, random.Random(1), 10, 1_000) for a in range(8)]
    assert first == second
