"""Stores that fail the way nobody foresaw, to prove the node stops rather than lie."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

from ledger.paxos.records import Write
from ledger.storage.base import AppWrite, Store


class FaultyStore:
    """Passes everything to `base`, but raises `error` on the `after`-th call (1-based) of
    `method` ("stage" or "sync"), before `base` sees that call: the batch is lost."""

    def __init__(self, base: Store, method: str, after: int, error: BaseException) -> None:
        self._base = base
        self._method = method
        self._after = after
        self._error = error
        self._calls = 0
        self._lock = threading.Lock()
        self.failed = threading.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._base, name)

    @property
    def readers_lock(self) -> Any:
        return self._base.readers_lock  # type: ignore[attr-defined]

    @readers_lock.setter
    def readers_lock(self, lock: Any) -> None:
        self._base.readers_lock = lock  # type: ignore[attr-defined]

    def _maybe_fail(self, method: str) -> None:
        if method != self._method:
            return
        with self._lock:
            self._calls += 1
            if self._calls == self._after:
                self.failed.set()
                raise self._error

    def stage(self, writes: Iterable[Write | AppWrite]) -> None:
        writes = list(writes)
        self._maybe_fail("stage")
        self._base.stage(writes)

    def sync(self) -> None:
        self._maybe_fail("sync")
        self._base.sync()
