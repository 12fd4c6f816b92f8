"""The durability gate on its own: which turns' answers may leave after which flushes."""

from __future__ import annotations

import pytest

from ledger.node.durability import NEVER_MS, DurabilityGate

LAZY_MS = 20


@pytest.fixture
def gate() -> DurabilityGate[str]:
    return DurabilityGate(LAZY_MS)


def test_a_turn_that_staged_a_vote_waits_for_the_flush_that_covers_it(
    gate: DurabilityGate[str],
) -> None:
    gate.staged()
    assert not gate.admit("votes", gates_sends=True)
    number = gate.begin_flush(now_ms=0)
    assert number == 1
    assert gate.flushed(1) == ["votes"]
    assert not gate.holding


def test_writes_staged_while_a_flush_runs_wait_for_the_next_one(
    gate: DurabilityGate[str],
) -> None:
    gate.staged()
    assert not gate.admit("first", gates_sends=True)
    assert gate.begin_flush(0) == 1
    gate.staged()  # staged after flush 1 took its batch
    assert not gate.admit("second", gates_sends=True)
    assert gate.begin_flush(0) is None, "one flush at a time"
    assert gate.flushed(1) == ["first"], "flush 1 does not cover the second turn's writes"
    assert gate.begin_flush(0) == 2
    assert gate.flushed(2) == ["second"]


def test_a_turn_whose_writes_a_flush_already_took_waits_for_that_flush(
    gate: DurabilityGate[str],
) -> None:
    gate.staged()
    assert gate.begin_flush(0) is None  # nothing waits yet: the flush may be lazy
    assert not gate.admit("vote", gates_sends=True)
    assert gate.begin_flush(0) == 1
    # Nothing new staged: a turn that gates sends waits for the flush in flight.
    assert not gate.admit("same-writes", gates_sends=True)
    assert gate.flushed(1) == ["vote", "same-writes"]


def test_a_turn_with_nothing_to_persist_leaves_at_once_unless_an_earlier_one_waits(
    gate: DurabilityGate[str],
) -> None:
    assert gate.admit("news", gates_sends=False)
    gate.staged()
    assert not gate.admit("vote", gates_sends=True)
    assert not gate.admit("news after the vote", gates_sends=False), "answers keep turn order"
    number = gate.begin_flush(0)
    assert number is not None
    assert gate.flushed(number) == ["vote", "news after the vote"]


def test_writes_nothing_waits_on_are_flushed_lazily(gate: DurabilityGate[str]) -> None:
    assert gate.lazy_flush_at_ms == NEVER_MS
    gate.staged()  # chosen values or applied state: no answer depends on them
    assert gate.begin_flush(now_ms=100) is None
    assert gate.lazy_flush_at_ms == 100 + LAZY_MS
    assert gate.begin_flush(now_ms=100 + LAZY_MS - 1) is None
    assert gate.begin_flush(now_ms=100 + LAZY_MS) == 1
    assert gate.lazy_flush_at_ms == NEVER_MS


def test_nothing_staged_means_no_flush(gate: DurabilityGate[str]) -> None:
    assert gate.begin_flush(0) is None
    assert gate.admit("nothing", gates_sends=False)
    assert gate.begin_flush(10_000) is None


def test_a_failed_flush_drops_every_held_turn_and_retries_its_writes(
    gate: DurabilityGate[str],
) -> None:
    gate.staged()
    assert not gate.admit("first", gates_sends=True)
    assert gate.begin_flush(0) == 1
    gate.staged()
    assert not gate.admit("second", gates_sends=True)
    assert gate.flush_failed() == ["first", "second"]
    assert not gate.holding
    # The failed flush's writes are still staged: the next flush must take them.
    assert not gate.admit("third", gates_sends=True)
    assert gate.begin_flush(0) == 2
    assert gate.flushed(2) == ["third"]


def test_a_sync_outside_the_gate_covers_what_was_staged(gate: DurabilityGate[str]) -> None:
    gate.staged()
    gate.synced()
    assert gate.begin_flush(0) is None
    assert gate.admit("after the sync", gates_sends=False)
