"""When a write stream's next batch leaves (client library and forwarding alike)."""

from __future__ import annotations

import pytest

from ledger.api import batching
from ledger.api.batching import MAX_BATCHES_IN_FLIGHT, MAX_HOLD_S, MIN_BATCH_WHILE_BUSY


def test_an_idle_node_gets_a_batch_at_once_and_nothing_waits_for_a_timer() -> None:
    assert batching.due_in_s(1, 0, since_last_sent_s=0.0) == 0
    assert batching.due_in_s(0, 0, since_last_sent_s=10.0) is None  # nothing to send


def test_a_busy_node_gets_a_batch_when_enough_queued_or_the_hold_passed() -> None:
    assert batching.due_in_s(MIN_BATCH_WHILE_BUSY, 3, since_last_sent_s=0.0) == 0
    assert batching.due_in_s(1, 3, since_last_sent_s=0.0) == pytest.approx(MAX_HOLD_S)
    assert batching.due_in_s(1, 3, since_last_sent_s=MAX_HOLD_S / 2) == pytest.approx(
        MAX_HOLD_S / 2)
    assert batching.due_in_s(1, 3, since_last_sent_s=MAX_HOLD_S) == 0


def test_nothing_leaves_past_the_batches_in_flight_limit() -> None:
    assert batching.due_in_s(10_000, MAX_BATCHES_IN_FLIGHT, since_last_sent_s=60.0) is None


@pytest.mark.parametrize(("seconds_left", "timeout_ms"), [
    (2.5, 2_500), (0.0, 1), (-3.0, 1), (0.0004, 1), (365 * 86_400.0, 2**32 - 1)])
def test_the_time_left_fits_the_field(seconds_left: float, timeout_ms: int) -> None:
    assert batching.timeout_ms(seconds_left) == timeout_ms
