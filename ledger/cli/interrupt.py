"""SIGTERM (and SIGHUP) handled as Ctrl-C: a long-running command stops what it started."""

from __future__ import annotations

import signal


def interrupt(signum: int, frame: object) -> None:
    """A signal handler: raise KeyboardInterrupt in the main thread, as Ctrl-C does."""
    raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")
