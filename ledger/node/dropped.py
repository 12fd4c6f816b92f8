"""Peer messages dropped at the wire: counted for `ledger status`, logged at a bounded rate."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

LOG_INTERVAL_S = 10.0  # at most one log line per interval; the rest are counted in it


class DroppedMessages:
    """How many malformed peer messages were dropped, and a rate-limited log of them."""

    def __init__(self, clock_s: Callable[[], float] = time.monotonic,
                 interval_s: float = LOG_INTERVAL_S) -> None:
        self._clock_s = clock_s
        self._interval_s = interval_s
        self._next_log_s = 0.0
        self._unlogged = 0
        self.count = 0

    def drop(self, peer: str, reason: object) -> None:
        """One message from `peer` was dropped because of `reason`."""
        self.count += 1
        now_s = self._clock_s()
        if now_s < self._next_log_s:
            self._unlogged += 1
            return
        more = f" ({self._unlogged} more dropped since the last report)" if self._unlogged else ""
        log.warning("dropped a malformed message from peer %s: %s%s", peer, reason, more)
        self._unlogged = 0
        self._next_log_s = now_s + self._interval_s
