"""Which answers may leave, given which writes are durable: persist before you reply.

The driver stages each turn's writes at once and makes them durable in the
background, one flush (one commit, one fsync) at a time; whatever is staged while a
flush runs rides with the next one (group commit). A turn whose writes include a
promise, a vote or a reserved round must not let any of its messages leave until a
flush that covers those writes has finished; a turn with nothing of the kind may go
at once, unless an earlier turn is still held (answers leave in turn order). Writes
nothing waits on (chosen values, applied state) are flushed lazily.

`DurabilityGate` keeps that bookkeeping and nothing else: no I/O, no clock of its
own (times are passed in), so it is tested on its own.
"""

from __future__ import annotations

from collections import deque
from typing import Generic, TypeVar

Group = TypeVar("Group")

NEVER_MS = 1 << 62


class DurabilityGate(Generic[Group]):
    """Holds turns' results until the flush that covers their writes has finished."""

    def __init__(self, lazy_flush_ms: int) -> None:
        assert lazy_flush_ms >= 0
        self._lazy_flush_ms = lazy_flush_ms
        self._dirty = False  # something is staged that no flush has taken yet
        self._flushing = False  # a flush is in flight
        self._started = 0  # flushes begun; flush numbers count from 1
        self._held: deque[tuple[int, Group]] = deque()  # (first flush that covers it, group)
        self._lazy_flush_at_ms = NEVER_MS

    @property
    def holding(self) -> bool:
        """Is any turn waiting for a flush?"""
        return bool(self._held)

    @property
    def lazy_flush_at_ms(self) -> int:
        """When writes nothing waits on must be flushed anyway (NEVER_MS: no such writes)."""
        return self._lazy_flush_at_ms

    def staged(self) -> None:
        """Writes were staged; the next flush must take them."""
        self._dirty = True

    def admit(self, group: Group, gates_sends: bool) -> bool:
        """A turn's results: True if they may leave now, False if they are held.

        A held group waits for the flush that covers everything staged so far: the
        next one if some writes are staged that no flush has taken, else the one in
        flight (which took them).
        """
        if not self._held and not gates_sends:
            return True
        covering = self._started + (1 if self._dirty else 0)
        self._held.append((covering, group))
        return False

    def begin_flush(self, now_ms: int) -> int | None:
        """The number of the flush to start now, or None: one is in flight, nothing is
        staged, or nothing waits on the staged writes and they may wait a little longer."""
        if self._flushing or not self._dirty:
            return None
        if not self._held and now_ms < self._lazy_flush_at_ms:
            if self._lazy_flush_at_ms == NEVER_MS:
                self._lazy_flush_at_ms = now_ms + self._lazy_flush_ms
            return None
        self._lazy_flush_at_ms = NEVER_MS
        self._flushing = True
        self._dirty = False
        self._started += 1
        return self._started

    def flushed(self, number: int) -> list[Group]:
        """Flush `number` is durable: the held groups it covers, in turn order."""
        assert self._flushing and number == self._started, "one flush at a time, in order"
        self._flushing = False
        released = []
        while self._held and self._held[0][0] <= number:
            released.append(self._held.popleft()[1])
        return released

    def flush_failed(self) -> list[Group]:
        """The flush in flight failed: its writes are staged again, and every held group
        is dropped (returned): nothing that vouches for them may leave."""
        assert self._flushing
        self._flushing = False
        self._dirty = True
        dropped = [group for _, group in self._held]
        self._held.clear()
        return dropped

    def synced(self) -> None:
        """Everything staged so far was made durable outside a flush (startup, shutdown,
        recovery from a failing disk)."""
        self._dirty = False
