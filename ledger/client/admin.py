"""A client of a node's Admin API: its status pages and counters (tools, the demo,
chaos runs, benchmarks and tests read nodes through these), and its backups."""

from __future__ import annotations

import os
from collections.abc import Callable

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ledger.security.tls import Security
from ledger.v1 import replica_pb2 as pb
from ledger.v1 import replica_pb2_grpc as pb_grpc


def status_pages(address: str, timeout_s: float, security: Security) -> list[pb.StatusReply]:
    """Every page of the node's status, in account order; raises grpc.RpcError."""
    pages = []
    after = ""
    with security.channel(address) as channel:
        stub = pb_grpc.AdminStub(channel)
        while True:
            page = stub.Status(pb.StatusRequest(after=after), timeout=timeout_s)
            pages.append(page)
            if page.complete or not page.accounts:
                return pages
            after = page.accounts[-1].account


def node_answers(address: str, security: Security, timeout_s: float = 1.0) -> bool:
    """Does a node serve its Admin API at `address`?"""
    return node_counters(address, timeout_s, security) is not None


def node_serving(address: str, security: Security, timeout_s: float = 1.0) -> bool:
    """Does the node at `address` say SERVING on the standard health service (it answers
    its Admin API earlier, while it checks with the other members that it may vote)?"""
    with security.channel(address) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=timeout_s)
        except grpc.RpcError:
            return False
    return reply.status == health_pb2.HealthCheckResponse.SERVING


def node_counters(address: str, timeout_s: float, security: Security) -> dict[str, int] | None:
    """The node's work counters (one small Status page), or None if it does not answer."""
    with security.channel(address) as channel:
        try:
            page = pb_grpc.AdminStub(channel).Status(pb.StatusRequest(limit=1), timeout=timeout_s)
        except grpc.RpcError:
            return None
    return dict(page.counters)


def account_statuses(address: str, timeout_s: float, security: Security
                     ) -> list[pb.AccountStatus] | None:
    """Every account as the node holds it, or None if it does not answer."""
    try:
        return [a for page in status_pages(address, timeout_s, security) for a in page.accounts]
    except grpc.RpcError:
        return None


class BackupIncomplete(Exception):
    """A node's backup stream ended short of (or past) the size it announced."""


def fetch_backup(address: str, path: str, security: Security, timeout_s: float | None = None,
                 progress: Callable[[int, int], None] = lambda done, total: None) -> str:
    """Write the node's backup (Admin.Backup: a consistent copy of its data file) at `path`,
    which must not exist; returns the node id the node gave.

    Calls `progress(bytes_done, bytes_total)` after every chunk. Raises grpc.RpcError,
    BackupIncomplete if the bytes received are not the total announced, or OSError.
    """
    with security.channel(address) as channel, open(path, "xb") as out:
        node_id, total_bytes, done_bytes = "", -1, 0
        for chunk in pb_grpc.AdminStub(channel).Backup(pb.BackupRequest(), timeout=timeout_s):
            if total_bytes < 0:  # the first chunk announces the node and the size
                node_id, total_bytes = chunk.node_id, chunk.total_bytes
            out.write(chunk.data)
            done_bytes += len(chunk.data)
            if done_bytes > total_bytes:
                raise BackupIncomplete(f"{address} sent more than the {total_bytes} bytes it "
                                       f"announced")
            progress(done_bytes, total_bytes)
        if total_bytes < 0:
            raise BackupIncomplete(f"{address} ended the backup without sending any of it")
        if done_bytes != total_bytes:
            raise BackupIncomplete(f"{address} ended the backup after {done_bytes} of the "
                                   f"{total_bytes} bytes it announced")
        out.flush()
        os.fsync(out.fileno())  # durable before the caller puts the backup in place
    return node_id
