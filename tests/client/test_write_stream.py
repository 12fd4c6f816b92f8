"""The client's write stream against real nodes: concurrent callers coalesced into shared
batches each get their own result or typed error; a node killed mid-stream fails its
writes over with their request ids; an older node without the stream gets unary calls;
a hung node costs a caller no more than its timeout."""

from __future__ import annotations

import asyncio
import contextlib
import pathlib
import threading
from collections.abc import Callable, Iterator
from concurrent import futures
from typing import TypeVar

import grpc
import pytest

from ledger.api import batching
from ledger.api.batching import MAX_MERGED_BYTES
from ledger.client import (
    INSECURE,
    AccountNotFound,
    BatchWrite,
    InsufficientFunds,
    InvalidRequest,
    LedgerClient,
    LedgerError,
    Transaction,
    Unavailable,
)
from ledger.client.streams import Group, WriteStream, _stranded_failure
from ledger.tools.localcluster import ProcessCluster
from ledger.v1 import ledger_pb2 as pb
from ledger.v1 import ledger_pb2_grpc as pb_grpc
from tests.support.in_process import Servers
from tests.support.polling import eventually

pytestmark = pytest.mark.xdist_group("processes")

T = TypeVar("T")


@pytest.fixture
def batches(monkeypatch: pytest.MonkeyPatch) -> list[list[pb.BatchOperation]]:
    """Every batch any write stream sends during the test, as its operations."""
    sent: list[list[pb.BatchOperation]] = []
    take = WriteStream._take

    def recording(self: WriteStream) -> tuple[list[Group], list[pb.BatchOperation]]:
        batch, operations = take(self)
        sent.append(list(operations))
        return batch, operations

    monkeypatch.setattr(WriteStream, "_take", recording)
    return sent


def on_threads(count: int, work: Callable[[int], list[T]]) -> list[list[T]]:
    """`work(t)` on `count` threads started together; each one's results, in order."""
    start = threading.Barrier(count, timeout=30)

    def run(index: int) -> list[T]:
        start.wait()
        return work(index)

    with futures.ThreadPoolExecutor(max_workers=count) as pool:
        done = [pool.submit(run, index) for index in range(count)]
        return [future.result(timeout=120) for future in done]


def account_of(operation: pb.BatchOperation) -> str:
    kind = operation.WhichOneof("operation")
    assert kind is not None
    return str(getattr(operation, kind).account_id)


def test_concurrent_callers_share_batches_and_each_gets_its_own_result(
        shared_cluster: ProcessCluster, batches: list[list[pb.BatchOperation]]) -> None:
    threads, writes, accounts = 32, 20, 8
    with LedgerClient(shared_cluster.addresses, security=shared_cluster.security) as bank:
        for k in range(accounts):
            bank.open_account(f"wsc-{k}", 0)
        batches.clear()

        def deposits(t: int) -> list[Transaction]:
            return [bank.deposit(f"wsc-{t % accounts}", t * writes + i + 1,
                                 request_id=f"wsc-{t}-{i}") for i in range(writes)]

        done = on_threads(threads, deposits)
        for t, results in enumerate(done):
            for i, result in enumerate(results):
                assert (result.request_id, result.account_id, result.duplicate) == (
                    f"wsc-{t}-{i}", f"wsc-{t % accounts}", False)
        for k in range(accounts):
            mine = [(result, t * writes + i + 1) for t, results in enumerate(done)
                    if t % accounts == k for i, result in enumerate(results)]
            positions = sorted(r.position for r, _ in mine)
            assert positions == list(range(1, len(mine) + 1))  # distinct, no gaps
            history = {e.position: e for e in bank.history(f"wsc-{k}", limit=1_000)}
            for result, amount in mine:
                # The entry at the position the caller was told holds the caller's write.
                entry = history[result.position]
                assert (entry.request_id, entry.amount) == (result.request_id, amount)
            assert bank.balance(f"wsc-{k}").balance == sum(amount for _, amount in mine)
    total = threads * writes
    assert sum(len(batch) for batch in batches) == total  # nothing sent twice
    assert len(batches) < total and max(len(batch) for batch in batches) > 1, (
        "concurrent callers' writes should have been coalesced into shared batches")


def test_each_caller_in_a_shared_batch_gets_its_own_typed_error(
        shared_cluster: ProcessCluster, batches: list[list[pb.BatchOperation]]) -> None:
    with LedgerClient(shared_cluster.addresses, security=shared_cluster.security) as bank:
        bank.open_account("wse-ok", 0)
        bank.open_account("wse-poor", 5)
        batches.clear()

        def one(t: int, kind: int, request_id: str) -> Transaction | LedgerError:
            try:
                if kind == 0:
                    return bank.deposit("wse-ok", 1 + t, request_id=request_id)
                if kind == 1:
                    return bank.withdraw("wse-poor", 1_000, request_id=request_id)
                if kind == 2:
                    return bank.deposit("wse-never", 1, request_id=request_id)
                return bank.deposit("wse bad", 1, request_id=request_id)
            except LedgerError as error:
                return error

        def mixed(t: int) -> list[Transaction | LedgerError]:
            return [one(t, (t + i) % 4, f"wse-{t}-{i}") for i in range(8)]

        done = on_threads(24, mixed)
        deposited: dict[str, int] = {}
        refused: list[str] = []
        for t, outcomes in enumerate(done):
            for i, outcome in enumerate(outcomes):
                request_id, kind = f"wse-{t}-{i}", (t + i) % 4
                if kind == 0:
                    assert isinstance(outcome, Transaction), outcome
                    assert (outcome.request_id, outcome.account_id) == (request_id, "wse-ok")
                    deposited[request_id] = 1 + t
                    continue
                assert isinstance(outcome, LedgerError)
                assert outcome.request_id == request_id
                if kind == 1:
                    assert isinstance(outcome, InsufficientFunds), outcome
                    assert (outcome.balance, outcome.amount) == (5, 1_000)
                    refused.append(request_id)
                elif kind == 2:
                    assert isinstance(outcome, AccountNotFound), outcome
                    assert "wse-never" in str(outcome)
                else:
                    assert isinstance(outcome, InvalidRequest), outcome
                    assert "'wse bad'" in str(outcome)

        ok = bank.history("wse-ok", limit=1_000)
        assert sorted(e.request_id for e in ok[1:]) == sorted(deposited)
        assert bank.balance("wse-ok").balance == sum(deposited.values())
        poor = bank.history("wse-poor", limit=1_000)
        # Refused withdrawals are recorded as refused, once each; the balance never moved.
        assert sorted(e.request_id for e in poor[1:]) == sorted(refused)
        assert all(e.kind == "withdrawal" and e.rejected for e in poor[1:])
        assert bank.balance("wse-poor").balance == 5
        with pytest.raises(AccountNotFound):
            bank.balance("wse-never")
        assert "wse-never" not in bank.list_accounts(after="wse-", limit=1_000)
    # Callers of different kinds really shared batches.
    assert any(len({account_of(op) for op in batch}) > 1 for batch in batches)


def test_writes_fail_over_with_their_request_ids_when_the_first_node_is_killed(
        own_cluster: ProcessCluster) -> None:
    cluster, writers, before_kill, after_kill, most = own_cluster, 8, 20, 20, 400
    killed = threading.Event()
    acknowledged: list[list[Transaction]] = [[] for _ in range(writers)]
    with LedgerClient(cluster.addresses, timeout_s=10, security=cluster.security) as bank:
        for w in range(writers):
            bank.open_account(f"wsf-{w}", 0)

        def write(w: int) -> None:
            """Deposits 1 until `after_kill` were acknowledged after the kill (at most
            `most`), each retried with its request id until acknowledged."""
            seen_kill_at: int | None = None
            for i in range(most):
                if seen_kill_at is None and killed.is_set():
                    seen_kill_at = i
                if seen_kill_at is not None and i - seen_kill_at >= after_kill:
                    break
                for attempt in range(6):
                    try:
                        done = bank.deposit(f"wsf-{w}", 1, request_id=f"wsf-{w}-{i}")
                    except Unavailable:
                        assert attempt < 5, f"wsf-{w}-{i} was never acknowledged"
                        continue
                    acknowledged[w].append(done)
                    break
            assert seen_kill_at is not None, "the writer finished before the kill"

        with futures.ThreadPoolExecutor(max_workers=writers) as pool:
            running = [pool.submit(write, w) for w in range(writers)]
            eventually(lambda: all(len(a) >= before_kill for a in acknowledged), 60,
                       "every writer's first writes acknowledged by the first node")
            cluster.kill(0)  # mid-stream: writes are in flight to it
            killed.set()
            for future in running:
                future.result(timeout=180)

    with LedgerClient(cluster.addresses[1:], security=cluster.security) as survivors:
        for w in range(writers):
            mine = acknowledged[w]
            assert len(mine) >= before_kill + after_kill
            assert [t.request_id for t in mine] == [f"wsf-{w}-{i}" for i in range(len(mine))]
            history = survivors.history(f"wsf-{w}", limit=1_000)[1:]
            # Each acknowledged write exactly once, where its caller was told, and nothing else.
            assert [e.request_id for e in history] == [t.request_id for t in mine]
            assert [e.position for e in history] == [t.position for t in mine]
            assert survivors.balance(f"wsf-{w}").balance == len(mine)


class SubmitOnly(pb_grpc.LedgerServicer):
    """An older node: Submit only (forwarded to a real node), no SubmitStream."""

    def __init__(self, node: pb_grpc.LedgerStub) -> None:
        self.node = node
        self.submits = 0

    def Submit(self, request: pb.SubmitRequest, context: grpc.ServicerContext
               ) -> pb.SubmitReply:
        self.submits += 1
        try:
            reply: pb.SubmitReply = self.node.Submit(request, timeout=20)
        except grpc.RpcError as error:
            context.abort(error.code(), error.details() or "")
        return reply


@pytest.fixture
def plain_cluster(tmp_path: pathlib.Path) -> Iterator[ProcessCluster]:
    with ProcessCluster(tmp_path / "plain", 1, tls=False) as cluster:
        yield cluster


def test_a_node_without_the_stream_gets_unary_submits(plain_cluster: ProcessCluster) -> None:
    with grpc.insecure_channel(plain_cluster.addresses[0]) as channel:
        older = SubmitOnly(pb_grpc.LedgerStub(channel))
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        pb_grpc.add_LedgerServicer_to_server(older, server)
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        try:
            with LedgerClient([f"127.0.0.1:{port}"], timeout_s=20, security=INSECURE,
                              stream_writes=True) as bank:
                opened = bank.open_account("wsu", 10, request_id="wsu-open")
                deposited = bank.deposit("wsu", 5, request_id="wsu-1")
                [withdrawn] = bank.submit([BatchWrite("withdraw", "wsu", 3, request_id="wsu-2")])
                with pytest.raises(InsufficientFunds) as refused:
                    bank.withdraw("wsu", 100, request_id="wsu-3")
        finally:
            server.stop(grace=None).wait(10)
    assert (opened.position, deposited.position, deposited.balance) == (0, 1, 15)
    assert isinstance(withdrawn, Transaction) and withdrawn.balance == 12
    assert (refused.value.balance, refused.value.request_id) == (12, "wsu-3")
    assert older.submits == 4  # every write went to it as a unary Submit
    with LedgerClient(plain_cluster.addresses, security=INSECURE) as real:
        assert real.balance("wsu").balance == 12
        assert [(e.request_id, e.rejected) for e in real.history("wsu")] == [
            ("wsu-open", False), ("wsu-1", False), ("wsu-2", False), ("wsu-3", True)]


def test_a_hung_node_costs_a_caller_its_timeout_and_a_retry_applies_once(
        own_cluster: ProcessCluster) -> None:
    cluster = own_cluster
    with LedgerClient([cluster.addresses[0]], timeout_s=2, security=cluster.security) as bank:
        bank.open_account("wsh", 100)  # the stream to the node is open
        cluster.pause(0)
        try:
            with pytest.raises(Unavailable) as hung:
                bank.deposit("wsh", 7, request_id="wsh-1")
        finally:
            cluster.resume(0)
        assert hung.value.request_id == "wsh-1" and "'wsh-1'" in str(hung.value)
        retried = bank.deposit("wsh", 7, request_id="wsh-1", timeout_s=30)
        again = bank.deposit("wsh", 7, request_id="wsh-1", timeout_s=30)
    assert (retried.position, retried.balance) == (1, 107)
    assert (again.position, again.balance, again.duplicate) == (1, 107, True)
    with LedgerClient(cluster.addresses[1:], security=cluster.security) as other:
        history = other.history("wsh")
        assert [(e.kind, e.amount) for e in history] == [("open", 100), ("deposit", 7)]
        assert history[1].request_id == "wsh-1"  # applied once, whichever attempt did it
        assert other.balance("wsh").balance == 107


# ------------------------------------------- the stream answers as the unary calls do

#: Unary calls (the reference), then the stream, which must answer as they do.
MODES = [pytest.param(False, id="unary"), pytest.param(True, id="stream")]


@pytest.mark.parametrize("stream_writes", MODES)
async def test_a_write_is_not_held_behind_another_callers_slow_batch(
        servers: Servers, stream_writes: bool) -> None:
    # The stream once sent nothing while a batch was in flight and fewer than 32
    # operations queued, so a caller waited out an unrelated slow batch (up to its whole
    # budget): a write the node refuses at once came back Unavailable after the
    # caller's timeout instead of InvalidRequest. Alone (of three) the node decides
    # nothing: a deposit waits for a majority; a deposit of 0 needs none.
    node = await servers.start(0)

    def quick_behind_slow() -> Transaction | LedgerError:
        with LedgerClient([servers.address(0)], timeout_s=4, security=INSECURE,
                          stream_writes=stream_writes) as bank:
            def slow() -> None:
                with contextlib.suppress(Unavailable):
                    bank.deposit("wsq-slow", 1, timeout_s=6)

            waiting = threading.Thread(target=slow)
            waiting.start()
            try:
                eventually(lambda: node.front_door.in_flight == 1, 10, "the slow write")
                try:
                    return bank.deposit("wsq-quick", 0)
                except LedgerError as error:
                    return error
            finally:
                waiting.join()

    outcome = await asyncio.to_thread(quick_behind_slow)
    assert isinstance(outcome, InvalidRequest), outcome


@pytest.mark.parametrize("stream_writes", MODES)
def test_a_submit_of_too_many_writes_fails_whole(shared_cluster: ProcessCluster,
                                                 stream_writes: bool) -> None:
    # Unary: InvalidRequest for the call, with the request ids it used. Stream: the
    # node refuses the batch whole, but the client returns 10,001 per-write errors.
    writes = [BatchWrite("deposit", "wsl-never", 1)] * 10_001
    with (LedgerClient(shared_cluster.addresses, security=shared_cluster.security,
                       stream_writes=stream_writes) as bank,
          pytest.raises(InvalidRequest) as refused):
        bank.submit(writes)
    assert "at most 10000 operations, not 10001" in str(refused.value)
    assert len(set(refused.value.request_ids)) == 10_001


@pytest.mark.parametrize("stream_writes", MODES)
def test_a_timeout_of_a_year_is_honoured(shared_cluster: ProcessCluster,
                                         stream_writes: bool) -> None:
    # WriteStream._batches sends the time left as uint32 milliseconds: past 49.7 days
    # (for one attempt: a third of a year here) the request cannot be built, gRPC
    # cancels the stream (UNKNOWN: Exception iterating requests!) and every write on
    # it fails, other callers' too.
    with LedgerClient(shared_cluster.addresses, timeout_s=365 * 86_400,
                      security=shared_cluster.security, stream_writes=stream_writes) as bank:
        name = f"wsm-{int(stream_writes)}"
        assert bank.open_account(name, 3).balance == 3
        assert bank.deposit(name, 4).balance == 7


@pytest.mark.parametrize("stream_writes", MODES)
def test_a_submit_of_nothing_is_answered_with_nothing(shared_cluster: ProcessCluster,
                                                      stream_writes: bool) -> None:
    # An empty group once never counted as due on the stream: the caller waited out its
    # timeout and got Unavailable.
    with LedgerClient(shared_cluster.addresses, timeout_s=5, security=shared_cluster.security,
                      stream_writes=stream_writes) as bank:
        assert bank.submit([]) == []
        assert bank.submit([BatchWrite("open", f"wse-{int(stream_writes)}", 1)])[0].balance == 1


# --------------------------------------- what a shared stream owes every caller on it

def test_callers_groups_are_merged_only_while_the_batch_stays_small() -> None:
    # Two submits that a node takes alone (each under its 4 MiB request limit) were once
    # merged into one request past it: the node ended the stream, failing both callers.
    memo = "m" * 200
    big = [pb.BatchOperation(deposit=pb.DepositRequest(
        account_id="a", amount=1, request_id=f"big-{i}", memo=memo)) for i in range(3_000)]
    small = [pb.BatchOperation(deposit=pb.DepositRequest(account_id="a", amount=1,
                                                         request_id="small"))]
    stream = WriteStream(None)  # type: ignore[arg-type]  # batching only: it never dials
    groups = [Group(big, 0.0), Group(big, 0.0), Group(small, 0.0), Group(small, 0.0)]
    assert groups[0].size_bytes < MAX_MERGED_BYTES < 2 * groups[0].size_bytes
    stream._queued = list(groups)
    taken = [stream._take()[0] for _ in range(2)]
    # The second big group does not join the first; the small ones do join it.
    assert taken == [[groups[0]], [groups[1], groups[2], groups[3]]]


@pytest.mark.parametrize(("code", "heard"), [
    (grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.UNAVAILABLE),
    (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNAVAILABLE),
    (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNAVAILABLE),
    (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.PERMISSION_DENIED),
    (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.UNAUTHENTICATED)])
def test_a_stream_that_ends_tells_its_callers_the_outcome_is_unknown(
        code: grpc.StatusCode, heard: grpc.StatusCode) -> None:
    # Its status is about the stream (one caller's bad batch ends it for all, and others'
    # batches may be applied): only a refusal at the door says nothing was written.
    failure = _stranded_failure(code, "why")
    assert failure.code() is heard
    if heard is grpc.StatusCode.UNAVAILABLE:
        assert "retrying with the same request id is safe" in failure.details()


def test_one_callers_huge_reply_does_not_end_the_stream_for_the_others(
        shared_cluster: ProcessCluster) -> None:
    # 10,000 errors that quote a long bad account id make a reply past gRPC's default
    # 4 MiB: the client's stream once ended on it, and every caller sharing it failed.
    bad = [BatchWrite("deposit", "x" * 360, 1)] * 10_000
    with LedgerClient(shared_cluster.addresses, security=shared_cluster.security) as bank:
        bank.open_account("wsr-good", 0)
        with futures.ThreadPoolExecutor(9) as pool:
            refused = pool.submit(bank.submit, bad)
            good = [pool.submit(bank.deposit, "wsr-good", 1) for _ in range(80)]
            assert all(isinstance(r, InvalidRequest) for r in refused.result(timeout=60))
            assert [g.result(timeout=60).duplicate for g in good] == [False] * 80
        assert bank.balance("wsr-good").balance == 80


def test_an_idle_stream_is_closed_and_the_next_write_opens_another(
        shared_cluster: ProcessCluster, monkeypatch: pytest.MonkeyPatch) -> None:
    # Every open stream holds one of the node's call places, idle or not.
    monkeypatch.setattr(batching, "IDLE_CLOSE_S", 0.2)
    with LedgerClient(shared_cluster.addresses[:1], security=shared_cluster.security) as bank:
        bank.open_account("wsi", 0)
        stream = bank._streams[0]  # type: ignore[index]
        eventually(lambda: not stream._open, 10, "the idle stream closed")
        assert bank.deposit("wsi", 3).balance == 3  # on a new stream


@pytest.mark.parametrize("stream_writes", MODES)
def test_a_node_stopped_cleanly_mid_load_costs_its_callers_nothing(
        own_cluster: ProcessCluster, stream_writes: bool) -> None:
    # A node stopping (SIGTERM) cancels the calls it is working on: CANCELLED once reached
    # unary callers as an error instead of a failover (the outcome is unknown, as for
    # UNAVAILABLE, and the same request id is safe to retry).
    cluster = own_cluster
    writers, each = 32, 40
    acknowledged: list[Transaction] = []
    failed: list[LedgerError] = []
    with LedgerClient(cluster.addresses, security=cluster.security, timeout_s=20,
                      stream_writes=stream_writes) as bank:
        for w in range(writers):
            bank.open_account(f"wst-{w}", 0)

        def write(w: int) -> None:
            for _ in range(each):
                try:
                    acknowledged.append(bank.deposit(f"wst-{w}", 1))
                except LedgerError as error:
                    failed.append(error)

        with futures.ThreadPoolExecutor(writers) as pool:
            running = [pool.submit(write, w) for w in range(writers)]
            eventually(lambda: len(acknowledged) >= writers * 3, 60, "writes flow")
            cluster.terminate(0)
            for future in running:
                future.result(timeout=180)
        assert failed == []
        assert len(acknowledged) == writers * each
        total = sum(bank.balance(f"wst-{w}").balance for w in range(writers))
    assert total == writers * each
