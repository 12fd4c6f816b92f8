"""Talking to real nodes in tests: a client bound to one node, log lengths, convergence."""

from __future__ import annotations

import grpc

from ledger.client import LedgerClient
from ledger.tools import replicas
from ledger.tools.replicas import NodeView
from ledger.v1 import replica_pb2 as pb
from ledger.v1 import replica_pb2_grpc as pb_grpc


def client(address: str, timeout_s: float = 10.0) -> LedgerClient:
    """A client bound to one node (no failover): the test chooses where writes go."""
    return LedgerClient([address], timeout_s=timeout_s)


def log_length(address: str, account: str) -> int:
    """How many slots of the account's log the node holds as chosen (Admin.Log)."""
    with grpc.insecure_channel(address) as channel:
        reply = pb_grpc.AdminStub(channel).Log(pb.LogRequest(account=account, limit=1), timeout=5)
    return reply.chosen_through + 1


def converged(addresses: list[str]) -> NodeView | None:
    """The common per-account view once every node holds and applied identical logs."""
    return replicas.converged(replicas.node_views(addresses, timeout_s=5)) or None
