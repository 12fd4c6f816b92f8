"""Small synchronous helpers for talking to real nodes in tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import grpc

from ledger.client import LedgerClient
from ledger.node.status_client import status_pages
from ledger.v1 import replica_pb2 as pb
from ledger.v1 import replica_pb2_grpc as pb_grpc

T = TypeVar("T")


def client(address: str, timeout_s: float = 10.0) -> LedgerClient:
    """A client bound to one node (no failover): the test chooses where writes go."""
    return LedgerClient([address], timeout_s=timeout_s)


def log_length(address: str, account: str) -> int:
    with grpc.insecure_channel(address) as channel:
        reply = pb_grpc.AdminStub(channel).Log(pb.LogRequest(account=account, limit=1), timeout=5)
    return reply.chosen_through + 1


def digests(address: str) -> dict[str, tuple[int, bytes, int]]:
    """account -> (chosen_through, digest, balance) as the node holds it."""
    return {a.account: (a.chosen_through, a.digest, a.balance)
            for page in status_pages(address, timeout_s=5) for a in page.accounts
            if a.applied_slot == a.chosen_through}


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


def converged(addresses: list[str]) -> dict[str, tuple[int, bytes, int]] | None:
    """The common per-account view if every node holds and applied identical logs."""
    views = [digests(address) for address in addresses]
    return views[0] if all(view == views[0] for view in views) and views[0] else None
