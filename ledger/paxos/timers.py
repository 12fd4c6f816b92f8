"""One node's timers: when `tick` next has work to do for an account.

A heap of (due, sequence, account) entries. An account keeps its earliest
deadline in `AccountState.timer_ms`, so re-arming it for a later deadline adds
nothing; entries left behind by deadlines that moved only cost a spurious check.
"""

from __future__ import annotations

import heapq

from ledger.paxos.account import AccountState


class TimerQueue:
    __slots__ = ("_heap", "_seq")

    def __init__(self) -> None:
        self._heap: list[tuple[int, int, str]] = []
        self._seq = 0

    def earliest_ms(self) -> int | None:
        return self._heap[0][0] if self._heap else None

    def arm(self, account: str, state: AccountState) -> None:
        """Make sure the account's earliest deadline (resend, catch-up, recovery or
        barrier) is queued."""
        deadlines = [
            deadline for deadline in (
                state.proposer.deadline_ms if state.proposer is not None else None,
                state.catch_up_at_ms,
                state.recovery_at_ms,
                *(barrier.deadline_ms for barrier in state.barriers.values()),
            ) if deadline is not None
        ]
        if not deadlines:
            return
        due_ms = min(deadlines)
        if state.timer_ms is None or due_ms < state.timer_ms:
            state.timer_ms = due_ms
            self._seq += 1
            heapq.heappush(self._heap, (due_ms, self._seq, account))

    def pop_due(self, now_ms: int) -> tuple[int, str] | None:
        """The next entry due at or before `now_ms`, as (due, account); None when none is."""
        heap = self._heap
        if heap and heap[0][0] <= now_ms:
            due_ms, _, account = heapq.heappop(heap)
            return due_ms, account
        return None
