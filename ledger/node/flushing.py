"""The node driver's durability half: group-commit flushes and a failing disk.

A flush runs on the store's writer thread while the loop serves on; when it ends,
the turns it made durable are released in order. A disk that refuses writes keeps
them staged: the node answers nothing that would need them until a sync succeeds,
and a failure nobody foresaw stops the node instead.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from ledger.node.consensus import StorageUnavailable
from ledger.node.counters import DriverCounters
from ledger.node.durability import DurabilityGate
from ledger.node.inbox import Call, Turn
from ledger.node.proposals import ProposalQueues
from ledger.paxos.records import Write
from ledger.storage.base import AppWrite, StorageError, Store

log = logging.getLogger(__name__)


class Flushing:
    """Mixed into NodeDriver, whose state it shares."""

    _store: Store
    _gate: DurabilityGate[Turn]
    _clock_ms: Callable[[], int]
    _fatal: BaseException | None
    _wake: asyncio.Event
    _proposals: ProposalQueues
    counters: DriverCounters
    storage_error: str | None
    _writes_staged: int  # since the last flush began: that flush's batch, for metrics

    def _release(self, turn: Turn) -> None:
        raise NotImplementedError

    def _fail(self, error: BaseException) -> None:
        raise NotImplementedError

    def _flush_if_needed(self) -> None:
        if self.storage_error is not None:
            return
        number = self._gate.begin_flush(self._clock_ms())
        if number is None:
            return
        self.counters.flush_writes.observe(self._writes_staged)
        self._writes_staged = 0
        started_ms = self._clock_ms()
        started_s = time.perf_counter()  # (the node's clock counts whole milliseconds)
        future = asyncio.wrap_future(self._store.flush_async())
        future.add_done_callback(lambda done: self._flushed(done, number, started_ms,
                                                            started_s))

    def _flushed(self, future: asyncio.Future[None], number: int, started_ms: int,
                 started_s: float) -> None:
        try:
            self._on_flushed(future, number, started_ms, started_s)
        except Exception as error:  # a callback's exception would only be logged: stop
            self._fail(error)

    def _on_flushed(self, future: asyncio.Future[None], number: int, started_ms: int,
                    started_s: float) -> None:
        if self._fatal is not None:
            return  # the node is stopping: nothing more leaves
        if future.cancelled():
            self._fail(RuntimeError(f"flush {number} was cancelled"))
            return
        error = future.exception()
        if error is not None and not isinstance(error, StorageError):
            # Not a disk the operator can fix but a failure nobody foresaw: what the
            # flush held may be lost, so nothing held may leave, ever.
            self._fail(error)
            return
        if error is not None:
            # The store keeps the writes staged; the next flush retries them. Nothing a
            # held turn vouches for may leave: peers and proposers retry on their own.
            dropped = self._gate.flush_failed()
            self._storage_failed(error)
            self._fail_calls([call for turn in dropped for call in turn.calls])
            return
        self.counters.syncs += 1
        self.counters.last_flush_ms = self._clock_ms() - started_ms
        self.counters.flush_seconds.observe(time.perf_counter() - started_s)
        if self.storage_error is not None:
            log.warning("storage is writable again")
            self.storage_error = None
        for turn in self._gate.flushed(number):
            self._release(turn)
        self._flush_if_needed()
        self._wake.set()

    def _stage(self, writes: list[Write] | list[AppWrite]) -> None:
        """Stage writes; a store that cannot take them keeps them staged for the next sync."""
        self._writes_staged += len(writes)
        try:
            self._store.stage(writes)
        except StorageError as error:
            self._storage_failed(error)

    def _storage_failed(self, error: StorageError) -> None:
        if self.storage_error is None:
            log.error("cannot persist writes, refusing to answer until it can: %s", error)
        self.storage_error = str(error)

    def _sync(self) -> bool:
        """Make staged writes durable now (startup, shutdown, recovery from a full disk)."""
        try:
            self._store.sync()
        except StorageError as error:
            self._storage_failed(error)
            return False
        self.counters.syncs += 1
        self._writes_staged = 0  # (made durable outside a flush: no flush's batch)
        self._gate.synced()
        if self.storage_error is not None:
            log.warning("storage is writable again")
            self.storage_error = None
        return True

    def _fail_calls(self, calls: list[Call]) -> None:
        for call in calls:
            if not call.future.done():
                call.future.set_result([])
        self._proposals.fail_active(StorageUnavailable(self.storage_error or
                                                       "storage unavailable"))
