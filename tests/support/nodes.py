"""Talking to real nodes in tests: a client bound to one node, log lengths, convergence
(over the cluster's own TLS: the local client certificate, every client role)."""

from __future__ import annotations

from ledger.client import LedgerClient
from ledger.tools import replicas
from ledger.tools.localcluster import ProcessCluster
from ledger.tools.replicas import NodeView
from ledger.v1 import replica_pb2 as pb
from ledger.v1 import replica_pb2_grpc as pb_grpc


def client(cluster: ProcessCluster, index: int, timeout_s: float = 10.0) -> LedgerClient:
    """A client bound to node `index` (no failover): the test chooses where writes go."""
    return LedgerClient([cluster.addresses[index]], timeout_s=timeout_s,
                        security=cluster.security)


def log_length(cluster: ProcessCluster, index: int, account: str) -> int:
    """How many slots of the account's log node `index` holds as chosen (Admin.Log)."""
    with cluster.security.channel(cluster.addresses[index]) as channel:
        reply = pb_grpc.AdminStub(channel).Log(pb.LogRequest(account=account, limit=1), timeout=5)
    return reply.chosen_through + 1


def converged(cluster: ProcessCluster) -> NodeView | None:
    """The common per-account view once every node holds and applied identical logs."""
    return replicas.converged(replicas.node_views(cluster.addresses, timeout_s=5,
                                                  security=cluster.security)) or None
