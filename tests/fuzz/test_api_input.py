"""Fuzzing the public API: random field values (valid ones among them) and raw bytes
through a real channel. Every call gets a clear status, and a call refused as invalid
writes nothing.

More examples: LEDGER_FUZZ_EXAMPLES=50000 python3 -m pytest tests/fuzz
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import grpc
import pytest
from google.protobuf.message import DecodeError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.v1 import ledger_pb2 as api
from ledger.v1 import replica_pb2 as pb
from ledger.v1 import replica_pb2_grpc as pb_grpc
from tests.support.background import BackgroundCluster
from tests.support.hostile import api_calls, hostile_text

pytestmark = pytest.mark.xdist_group("fuzz-api")

EXAMPLES = int(os.environ.get("LEDGER_FUZZ_EXAMPLES", "1500"))
ACCOUNTS = st.one_of(st.sampled_from(["api-a", "api-b", "api-c"]), hostile_text)
METHODS = ["OpenAccount", "Deposit", "Withdraw", "Transfer", "GetBalance", "GetHistory",
           "ListAccounts", "Submit"]
REPLIES = {"OpenAccount": api.TransactionReply, "Deposit": api.TransactionReply,
           "Withdraw": api.TransactionReply, "Transfer": api.TransferReply,
           "GetBalance": api.BalanceReply,
           "GetHistory": api.HistoryReply, "ListAccounts": api.ListAccountsReply,
           "Submit": api.SubmitReply}
#: The answers a call may get; UNKNOWN or INTERNAL would be a failure nobody handled.
CLEAR = {grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND,
         grpc.StatusCode.ALREADY_EXISTS, grpc.StatusCode.FAILED_PRECONDITION,
         grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED}


class Run:
    def __init__(self, cluster: BackgroundCluster) -> None:
        self.cluster = cluster
        self.channels = cluster.channels()
        self.admins = [pb_grpc.AdminStub(c) for c in self.channels]

    def proposals(self) -> list[int]:
        return [admin.Status(pb.StatusRequest(limit=1), timeout=10).counters["proposals"]
                for admin in self.admins]

    def close(self) -> None:
        for channel in self.channels:
            channel.close()


@pytest.fixture(scope="module")
def run() -> Iterator[Run]:
    with BackgroundCluster() as cluster:
        running = Run(cluster)
        try:
            yield running
        finally:
            running.close()


@settings(max_examples=EXAMPLES, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(target=st.integers(0, 2), call=api_calls(ACCOUNTS),
       raw=st.one_of(st.none(), st.tuples(st.sampled_from(METHODS), st.binary(max_size=200))))
def test_hostile_api_calls(run: Run, target: int, call: tuple[str, object],
                           raw: tuple[str, bytes] | None) -> None:
    channel = run.channels[target]
    if raw is not None:
        method, payload = raw
        try:
            channel.unary_unary(f"/ledger.v1.Ledger/{method}")(payload, timeout=10)
        except grpc.RpcError as error:
            assert error.code() in CLEAR, f"{error.code()}: {error.details()}"
    method, request = call
    before = run.proposals()
    stub = channel.unary_unary(f"/ledger.v1.Ledger/{method}",
                               request_serializer=lambda r: r.SerializeToString(),
                               response_deserializer=REPLIES[method].FromString)
    try:
        stub(request, timeout=10)
    except grpc.RpcError as error:
        assert error.code() in CLEAR, f"{error.code()}: {error.details()}"
        if error.code() == grpc.StatusCode.INVALID_ARGUMENT:
            assert run.proposals() == before, f"an invalid {method} wrote something"


@settings(max_examples=max(EXAMPLES // 10, 50), deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(target=st.integers(0, 2), messages=st.lists(st.one_of(
    st.binary(max_size=200),
    st.tuples(st.integers(0, 2**64 - 1), api_calls(ACCOUNTS), st.integers(0, 2**32 - 1))),
    min_size=1, max_size=4))
def test_hostile_write_streams(run: Run, target: int,
                               messages: list[bytes | tuple[int, tuple[str, object], int]]
                               ) -> None:
    """A write stream of raw bytes and hostile batches: each batch is answered with one
    clear result per operation, or the stream ends with a clear status."""
    sent: list[int] = []  # the operation count of each well-formed batch, in order
    payloads = []
    for message in messages:
        if isinstance(message, bytes):
            payloads.append(message)
            with contextlib.suppress(DecodeError):  # bytes may happen to be a request
                sent.append(len(api.StreamRequest.FromString(message).operations))
            continue
        tag, (_, request), timeout_ms = message
        operations = request.operations if isinstance(request, api.SubmitRequest) else []
        sent.append(len(operations))
        payloads.append(api.StreamRequest(tag=tag, operations=operations,
                                          timeout_ms=timeout_ms).SerializeToString())
    stream = run.channels[target].stream_stream(
        "/ledger.v1.Ledger/SubmitStream", response_deserializer=api.StreamReply.FromString)
    try:
        for reply in stream(iter(payloads), timeout=30):
            assert all(grpc.StatusCode.OK.value[0] == r.code or any(
                r.code == code.value[0] for code in CLEAR) for r in reply.results)
            assert len(reply.results) in sent
    except grpc.RpcError as error:
        assert error.code() in CLEAR, f"{error.code()}: {error.details()}"


def test_afterwards_nothing_went_wrong_inside(run: Run) -> None:
    assert all(isinstance(count, int) for count in run.proposals())
    assert run.cluster.trouble.records == []
