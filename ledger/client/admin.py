"""A client of a node's Admin API: its status pages and counters (tools, the demo,
chaos runs, benchmarks and tests read nodes through these)."""

from __future__ import annotations

import grpc

from ledger.v1 import replica_pb2 as pb
from ledger.v1 import replica_pb2_grpc as pb_grpc


def status_pages(address: str, timeout_s: float) -> list[pb.StatusReply]:
    """Every page of the node's status, in account order; raises grpc.RpcError."""
    pages = []
    after = ""
    with grpc.insecure_channel(address) as channel:
        stub = pb_grpc.AdminStub(channel)
        while True:
            page = stub.Status(pb.StatusRequest(after=after), timeout=timeout_s)
            pages.append(page)
            if page.complete or not page.accounts:
                return pages
            after = page.accounts[-1].account


def node_answers(address: str, timeout_s: float = 1.0) -> bool:
    """Does a node serve its Admin API at `address`?"""
    return node_counters(address, timeout_s) is not None


def node_counters(address: str, timeout_s: float) -> dict[str, int] | None:
    """The node's work counters (one small Status page), or None if it does not answer."""
    with grpc.insecure_channel(address) as channel:
        try:
            page = pb_grpc.AdminStub(channel).Status(pb.StatusRequest(limit=1), timeout=timeout_s)
        except grpc.RpcError:
            return None
    return dict(page.counters)


def account_statuses(address: str, timeout_s: float) -> list[pb.AccountStatus] | None:
    """Every account as the node holds it, or None if it does not answer."""
    try:
        return [a for page in status_pages(address, timeout_s) for a in page.accounts]
    except grpc.RpcError:
        return None
