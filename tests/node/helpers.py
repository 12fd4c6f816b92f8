"""Small synchronous helpers for talking to real nodes in tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import grpc

from ledger.v1 import replica_pb2 as pb
from ledger.v1 import replica_pb2_grpc as pb_grpc

T = TypeVar("T")


def propose(address: str, account: str, value: bytes, timeout_s: float = 10.0) -> int:
    with grpc.insecure_channel(address) as channel:
        reply = pb_grpc.ReplicaStub(channel).Propose(
            pb.ProposeRequest(account=account, value=value), timeout=timeout_s)
    return reply.position


def log(address: str, account: str) -> list[bytes]:
    values: list[bytes] = []
    with grpc.insecure_channel(address) as channel:
        stub = pb_grpc.AdminStub(channel)
        while True:
            reply = stub.Log(pb.LogRequest(account=account, from_position=len(values),
                                           limit=1_000), timeout=5)
            values.extend(reply.values)
            if not reply.values:
                return values


def digests(address: str) -> dict[str, tuple[int, bytes]]:
    """account -> (chosen_through, digest) as the node holds it."""
    result = {}
    with grpc.insecure_channel(address) as channel:
        stub = pb_grpc.AdminStub(channel)
        after = ""
        while True:
            page = stub.Status(pb.StatusRequest(after=after), timeout=5)
            for account in page.accounts:
                result[account.account] = (account.chosen_through, account.digest)
            if page.complete or not page.accounts:
                return result
            after = page.accounts[-1].account


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


def converged(addresses: list[str]) -> dict[str, tuple[int, bytes]] | None:
    """The common account digests if every node holds identical logs, else None."""
    views = [digests(address) for address in addresses]
    return views[0] if all(view == views[0] for view in views) and views[0] else None
