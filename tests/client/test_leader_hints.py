"""A write that reaches a node which does not lead its account is forwarded; the reply
names the leader, and the client sends that account's next writes there directly."""

from __future__ import annotations

import pytest

from ledger.client import LedgerClient
from ledger.client.admin import node_counters
from ledger.tools.localcluster import ProcessCluster
from ledger.v1 import ledger_pb2 as pb
from ledger.v1 import ledger_pb2_grpc as pb_grpc

pytestmark = pytest.mark.xdist_group("processes")


def forwarded_by(cluster: ProcessCluster, index: int) -> int:
    counters = node_counters(cluster.addresses[index], 5, cluster.security)
    assert counters is not None
    return counters["forwarded_batches"]


def test_replies_name_the_leader_and_the_client_goes_there(
        shared_cluster: ProcessCluster) -> None:
    n1, n2 = shared_cluster.addresses[0], shared_cluster.addresses[1]
    with LedgerClient([n1], security=shared_cluster.security) as first:
        first.open_account("hinted", 0)
        for _ in range(3):  # n1 proposes, and holds the account's range promise
            first.deposit("hinted", 1)
    with shared_cluster.security.channel(n2) as channel:
        reply = pb_grpc.LedgerStub(channel).Deposit(pb.DepositRequest(
            account_id="hinted", amount=1, request_id="hinted-via-n2"), timeout=10)
    assert reply.leader == n1  # n2 forwarded it to n1, and says so
    with shared_cluster.security.channel(n1) as channel:
        reply = pb_grpc.LedgerStub(channel).Deposit(pb.DepositRequest(
            account_id="hinted", amount=1, request_id="hinted-via-n1"), timeout=10)
    assert reply.leader == ""  # n1 leads it itself

    before = forwarded_by(shared_cluster, 1)
    with LedgerClient([n2, n1], security=shared_cluster.security) as second:
        for _ in range(5):
            second.deposit("hinted", 1)
        assert second.balance("hinted").balance == 10
    # The first deposit went to n2, which forwarded it; the client then went to n1.
    assert forwarded_by(shared_cluster, 1) - before == 1
