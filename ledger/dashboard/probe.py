"""What the live page shows, read from the cluster: one client of every node's Admin
and health services (with the operator's certificate when the cluster uses TLS).

Members and their health, work rates from the nodes' counters, a page of accounts with
each replica's applied slot and digest, and the Paxos messages of a chosen account
from the nodes' own traces. Everything is bounded: a page of accounts at a time,
traces kept by the nodes for a few accounts.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ledger.security.tls import Security
from ledger.tools.replicas import AccountView, agreement, view_of
from ledger.tools.sequence import diagram
from ledger.v1 import replica_pb2 as pb
from ledger.v1 import replica_pb2_grpc as pb_grpc

DEFAULT_PAGE_ACCOUNTS = 50
MAX_PAGE_ACCOUNTS = 500
CALL_TIMEOUT_S = 2.0
UNREACHABLE = {"unreachable": True}  # a replica's place when its node does not answer
#: Counters whose rates the page shows, per second.
RATES = {"writes": "writes:", "applied": "applied", "proposals": "proposals",
         "fast_path": "fast_path_proposals"}


@dataclass
class _Node:
    address: str
    channel: grpc.Channel
    admin: pb_grpc.AdminStub
    health: health_pb2_grpc.HealthStub
    node_id: str = ""
    last_counters: tuple[float, dict[str, int]] | None = None  # (monotonic s, counters)


class ClusterProbe:
    """Reads the cluster for the page; safe to call from the HTTP server's threads."""

    def __init__(self, addresses: Sequence[str], security: Security) -> None:
        self._nodes = []
        for address in addresses:
            channel = security.channel(address)
            self._nodes.append(_Node(address, channel, pb_grpc.AdminStub(channel),
                                     health_pb2_grpc.HealthStub(channel)))
        self._lock = threading.Lock()  # the counters' last readings, between threads

    def close(self) -> None:
        for node in self._nodes:
            node.channel.close()

    def node_ids(self) -> list[str]:
        return [node.node_id or node.address for node in self._nodes]

    def cluster(self, after: str, page_size: int = DEFAULT_PAGE_ACCOUNTS) -> dict[str, object]:
        """Members with health and rates, and one page of accounts after `after`."""
        page_size = max(1, min(page_size, MAX_PAGE_ACCOUNTS))
        statuses = [self._status(node, after, page_size) for node in self._nodes]
        members = [self._member(node, status) for node, status in zip(
            self._nodes, statuses, strict=True)]
        total = sum(m["rates"]["writes"] for m in members if m["rates"] is not None)
        return {"members": members, "total_writes_per_s": total,
                "accounts": accounts_page(self.node_ids(), statuses, page_size)}

    def trace(self, account: str) -> dict[str, object]:
        """The account's recent Paxos messages on every node. Every ask also says "start"
        (a node already tracing it keeps its events), so a node restarted since, or
        that let the account go for others, traces it again."""
        events: list[pb.TraceEvent] = []
        for node in self._nodes:
            try:
                events.extend(node.admin.Trace(pb.TraceRequest(account=account, start=True),
                                               timeout=CALL_TIMEOUT_S).events)
            except grpc.RpcError:
                continue  # a node down: the others' events still show
        return diagram(f"Paxos messages for account {account!r}", self.node_ids(),
                       events).as_json()

    def _status(self, node: _Node, after: str, limit: int) -> pb.StatusReply | None:
        try:
            reply = node.admin.Status(pb.StatusRequest(after=after, limit=limit),
                                      timeout=CALL_TIMEOUT_S)
        except grpc.RpcError:
            return None
        node.node_id = reply.node_id
        return reply

    def _member(self, node: _Node, status: pb.StatusReply | None) -> dict[str, object]:
        health = "unreachable"
        if status is not None:
            try:
                serving = node.health.Check(health_pb2.HealthCheckRequest(),
                                            timeout=CALL_TIMEOUT_S).status
                health = health_pb2.HealthCheckResponse.ServingStatus.Name(serving)
            except grpc.RpcError as error:
                health = f"health check failed: {error.code().name}"
        rates = None
        if status is not None:
            now_s, counters = time.monotonic(), dict(status.counters)
            with self._lock:
                last, node.last_counters = node.last_counters, (now_s, counters)
            if last is not None:
                rates = counter_rates(last[1], counters, now_s - last[0])
        return {"node_id": node.node_id or node.address, "address": node.address,
                "health": health, "serving": health == "SERVING", "rates": rates}


def counter_rates(before: dict[str, int], after: dict[str, int], seconds: float
                  ) -> dict[str, float | None]:
    """Per second, between two readings of a node's counters: writes answered, entries
    applied, proposals, and the fast path's share of the proposals (None: none made)."""
    def delta(prefix: str) -> int:
        keys = [k for k in after if k == prefix or (prefix.endswith(":") and
                                                      k.startswith(prefix))]
        return sum(after[k] - before.get(k, 0) for k in keys)

    seconds = max(seconds, 1e-3)
    proposals = delta(RATES["proposals"])
    return {"writes": delta(RATES["writes"]) / seconds,
            "applied": delta(RATES["applied"]) / seconds,
            "proposals": proposals / seconds,
            "fast_share": delta(RATES["fast_path"]) / proposals if proposals > 0 else None}


def accounts_page(node_ids: list[str], statuses: Sequence[pb.StatusReply | None],
                  page_size: int) -> dict[str, object]:
    """The first `page_size` accounts any node holds (after the cursor each was asked
    with), each with every replica's view (None: not held there; UNREACHABLE: the node
    did not answer), and whether the replicas that answered agree, as `ledger status`
    compares them."""
    views = [None if status is None else view_of(status.accounts) for status in statuses]
    names = sorted({name for view in views if view is not None for name in view})[:page_size]
    agree = agreement(views)
    rows = []
    for name in names:
        replicas = [UNREACHABLE if view is None else
                    _replica(view[name]) if name in view else None for view in views]
        first = next(view[name] for view in views if view is not None and name in view)
        rows.append({"account": name, "replicas": replicas,
                     "agree": agree[name] and first.caught_up})
    complete = all(s is None or s.complete for s in statuses) and len(names) < page_size
    return {"accounts": rows, "page_size": page_size, "complete": complete,
            "next_after": names[-1] if names else "", "nodes": node_ids}


def _replica(view: AccountView) -> dict[str, object]:
    return {"applied_slot": view.applied_slot, "chosen_through": view.chosen_through,
            "digest": view.digest.hex()}
