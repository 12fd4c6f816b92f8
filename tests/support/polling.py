"""Waiting for an outcome with a generous deadline, never for a fixed time."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import grpc

T = TypeVar("T")


def eventually(check: Callable[[], T], timeout_s: float = 30.0, what: str = "") -> T:
    """Poll `check` until it returns a truthy value; fail with `what` after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    last: T | None = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except grpc.RpcError:
            last = None
        if last:
            return last
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout_s}s: {what} (last: {last!r})")
