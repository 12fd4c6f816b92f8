"""The batch API (Submit) and `teller import` against a real 3-node cluster."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest

from ledger.client import (
    AccountExists,
    AccountNotFound,
    BatchWrite,
    InsufficientFunds,
    InvalidRequest,
    LedgerClient,
    Transaction,
    Unavailable,
    with_request_ids,
)
from ledger.security.tls import INSECURE
from ledger.tools.localcluster import ProcessCluster
from ledger.v1 import ledger_pb2 as pb
from ledger.v1 import ledger_pb2_grpc as pb_grpc

pytestmark = pytest.mark.xdist_group("processes")


@pytest.fixture(scope="module")
def cluster(shared_cluster: ProcessCluster) -> ProcessCluster:
    return shared_cluster


@pytest.fixture
def bank(cluster: ProcessCluster) -> Iterator[LedgerClient]:
    with LedgerClient(cluster.addresses, security=cluster.security) as client:
        yield client


def test_results_come_back_in_order_each_as_its_single_call_would(bank: LedgerClient) -> None:
    results = bank.submit([
        BatchWrite("open", "sb-a", 100),
        BatchWrite("deposit", "sb-a", 50, memo="in"),
        BatchWrite("withdraw", "sb-a", 500),  # refused: 150 < 500
        BatchWrite("deposit", "sb-missing", 5),  # never opened
        BatchWrite("deposit", "sb-a", 0),  # invalid amount
        BatchWrite("open", "bad id!", 1),  # invalid account id
        BatchWrite("withdraw", "sb-a", 150),
    ])
    opened, deposited, refused, missing, invalid, bad_id, emptied = results
    assert isinstance(opened, Transaction) and opened.position == 0
    assert isinstance(deposited, Transaction) and deposited.balance == 150
    assert isinstance(refused, InsufficientFunds)
    assert isinstance(missing, AccountNotFound)
    assert isinstance(invalid, InvalidRequest) and isinstance(bad_id, InvalidRequest)
    assert isinstance(emptied, Transaction) and emptied.balance == 0
    history = bank.history("sb-a")
    assert [(e.kind, e.rejected) for e in history] == [
        ("open", False), ("deposit", False), ("withdrawal", True), ("withdrawal", False)]


def test_a_resubmitted_batch_applies_nothing_twice(bank: LedgerClient) -> None:
    bank.open_account("sb-b", 0)
    writes = [BatchWrite("deposit", f"sb-b{i % 3}" if i % 2 else "sb-b", 1,
                         request_id=f"batch-{i}") for i in range(300)]
    for name in ("sb-b0", "sb-b1", "sb-b2"):
        bank.open_account(name, 0)
    first = bank.submit(writes)
    again = bank.submit(writes)
    assert all(isinstance(r, Transaction) and not r.duplicate for r in first)
    assert all(isinstance(r, Transaction) and r.duplicate for r in again)
    assert [(r.position, r.balance) for r in first] == [  # type: ignore[union-attr]
        (r.position, r.balance) for r in again]  # type: ignore[union-attr]
    assert bank.balance("sb-b").balance == 150


def test_one_hot_account_shares_log_entries(cluster: ProcessCluster, bank: LedgerClient) -> None:
    bank.open_account("sb-hot", 0)
    results = bank.submit([BatchWrite("deposit", "sb-hot", 1) for _ in range(1_000)])
    positions = sorted(r.position for r in results if isinstance(r, Transaction))
    assert positions == list(range(1, 1_001))  # one operation number each, no gaps
    with cluster.security.channel(cluster.addresses[0]) as channel:
        from ledger.v1 import replica_pb2, replica_pb2_grpc

        log = replica_pb2_grpc.AdminStub(channel).Log(
            replica_pb2.LogRequest(account="sb-hot", limit=1_000), timeout=5)
    assert len(log.values) < 100, "a thousand deposits should need far fewer log positions"


def test_a_reused_request_id_with_other_fields_is_refused(bank: LedgerClient) -> None:
    bank.open_account("sb-c", 10)
    first, conflicting = bank.submit([
        BatchWrite("deposit", "sb-c", 5, request_id="sb-c-1"),
        BatchWrite("deposit", "sb-c", 6, request_id="sb-c-1"),
    ])
    assert isinstance(first, Transaction)
    assert isinstance(conflicting, AccountExists)
    assert bank.balance("sb-c").balance == 15


def test_a_batch_over_the_limit_is_invalid(cluster: ProcessCluster) -> None:
    operation = pb.BatchOperation(deposit=pb.DepositRequest(
        account_id="x", amount=1, request_id="r"))
    with cluster.security.channel(cluster.addresses[0]) as channel:
        stub = pb_grpc.LedgerStub(channel)
        with pytest.raises(grpc.RpcError) as refused:
            stub.Submit(pb.SubmitRequest(operations=[operation] * 10_001), timeout=30)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        empty = stub.Submit(pb.SubmitRequest(operations=[pb.BatchOperation()]), timeout=5)
    assert empty.results[0].code == grpc.StatusCode.INVALID_ARGUMENT.value[0]


def test_a_submit_that_fails_whole_says_which_ids_it_used(cluster: ProcessCluster,
                                                          nowhere: str) -> None:
    # The ids it generated were lost when the whole call failed: a retry applied again.
    writes = [BatchWrite("open", "ids-a", 10, request_id="chosen-by-me"),
              BatchWrite("deposit", "ids-a", 5), BatchWrite("deposit", "ids-a", 7)]
    with (LedgerClient([nowhere], timeout_s=1, security=INSECURE) as unreachable,
          pytest.raises(Unavailable) as lost):
        unreachable.submit(writes)
    ids = lost.value.request_ids
    assert len(ids) == 3 and ids[0] == "chosen-by-me" and len(set(ids)) == 3
    with LedgerClient(cluster.addresses, security=cluster.security) as bank:
        first = bank.submit(with_request_ids(writes, ids))
        again = bank.submit(with_request_ids(writes, ids))
        assert [r.duplicate for r in first] == [False, False, False]  # type: ignore[union-attr]
        assert [r.duplicate for r in again] == [True, True, True]  # type: ignore[union-attr]
        assert bank.balance("ids-a").balance == 22
