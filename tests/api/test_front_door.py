"""Every public API request is bounded before any work: size before decoding, operations
per Submit, calls in flight, and how long the node works on one (in-process nodes)."""

from __future__ import annotations

import asyncio
import threading

import grpc
import pytest

from ledger.security.tls import INSECURE
from ledger.server.deadlines import time_budget_s
from ledger.server.limits import ServerLimits
from ledger.v1 import ledger_pb2 as pb
from ledger.v1 import ledger_pb2_grpc as pb_grpc
from tests.support.in_process import Servers


async def raw_call(address: str, method: str, payload: bytes, timeout_s: float = 10
                   ) -> grpc.aio.AioRpcError:
    """Send bytes as they are (no serializer) and return the error the node answers with."""
    async with grpc.aio.insecure_channel(address) as channel:
        call = channel.unary_unary(f"/ledger.v1.Ledger/{method}")
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await call(payload, timeout=timeout_s)
    return refused.value


async def test_a_submit_is_counted_whole_before_any_work(servers: Servers) -> None:
    # Empty operations became per-operation errors before the cap was checked, so one
    # request could carry tens of millions of them.
    await servers.start(0)
    request = pb.SubmitRequest(operations=[pb.BatchOperation()] * 10_001)
    error = await raw_call(servers.address(0), "Submit", request.SerializeToString())
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "at most 10000 operations, not 10001" in (error.details() or "")


async def test_an_oversized_request_is_refused_before_decoding(servers: Servers) -> None:
    await servers.start(0, limits=ServerLimits(max_client_request_bytes=1_024))
    deposit = pb.DepositRequest(account_id="a", amount=1, request_id="r", memo="m" * 2_000)
    error = await raw_call(servers.address(0), "Deposit", deposit.SerializeToString())
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "exceeds this API's limit of 1024 bytes" in (error.details() or "")


@pytest.mark.parametrize("payload", [b"\xff\xff\xff", b"\x0a\x05ab", b"\x12\x80\x80"])
async def test_bytes_that_are_not_a_request_get_a_clear_status(servers: Servers,
                                                               payload: bytes) -> None:
    await servers.start(0)
    error = await raw_call(servers.address(0), "Deposit", payload)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "not a valid ledger.v1.DepositRequest" in (error.details() or "")


async def test_calls_past_the_limit_in_flight_are_refused_at_once(servers: Servers) -> None:
    # Alone, the node cannot decide anything: a read of an unknown account waits for a
    # majority until its deadline, holding the one place in flight.
    await servers.start(0, limits=ServerLimits(max_client_calls_in_flight=1))
    async with grpc.aio.insecure_channel(servers.address(0)) as channel:
        stub = pb_grpc.LedgerStub(channel)
        waiting = asyncio.ensure_future(
            stub.GetBalance(pb.GetBalanceRequest(account_id="nobody"), timeout=30))
        node = servers.nodes[0]
        assert node is not None
        for _ in range(200):
            if node.front_door.in_flight:
                break
            await asyncio.sleep(0.01)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.GetBalance(pb.GetBalanceRequest(account_id="other"), timeout=10)
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "busy" in (refused.value.details() or "")
        waiting.cancel()
    assert node.front_door.refused == 1


class Remaining:
    """The one thing time_budget_s asks of a gRPC context."""

    def __init__(self, remaining_s: float | None) -> None:
        self.remaining_s = remaining_s

    def time_remaining(self) -> float | None:
        return self.remaining_s


@pytest.mark.parametrize(("remaining_s", "budget_s"), [(10.0, 8.0), (None, 8.0),
                                                        (3_600.0, 48.0), (0.0, 0.0)])
def test_a_caller_cannot_hold_a_node_past_the_deadline_cap(remaining_s: float | None,
                                                           budget_s: float) -> None:
    context = Remaining(remaining_s)
    assert time_budget_s(context, max_deadline_s=60.0) == pytest.approx(  # type: ignore[arg-type]
        budget_s)


async def test_a_submit_to_many_new_accounts_runs_a_bounded_number_of_workers(
    servers: Servers, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ledger.bank import writes
    from ledger.client import BatchWrite, LedgerClient, Transaction

    monkeypatch.setattr(writes, "MAX_ACCOUNT_WORKERS", 3)
    for index in range(3):
        await servers.start(index)
    node = servers.nodes[0]
    assert node is not None
    writers = node.bank._writers
    most = 0

    def submit() -> list[object]:
        with LedgerClient([servers.address(0)], timeout_s=30, security=INSECURE) as bank:
            return list(bank.submit([BatchWrite("open", f"many-{i}", 1) for i in range(60)]))

    done = asyncio.ensure_future(asyncio.to_thread(submit))
    while not done.done():
        most = max(most, writers._running)
        await asyncio.sleep(0.001)
    results = await done
    assert all(isinstance(result, Transaction) for result in results)
    assert 1 <= most <= 3
    assert writers._running == 0 and not writers._turns


async def test_accounts_waiting_for_a_worker_get_their_turn(
    servers: Servers, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A worker that yielded took its own place back: others waited for ever.
    from ledger.bank import writes
    from ledger.client import LedgerClient

    monkeypatch.setattr(writes, "MAX_ACCOUNT_WORKERS", 1)
    for index in range(3):
        await servers.start(index)
    address = servers.address(0)

    def busy_and_other() -> tuple[int, int]:
        with LedgerClient([address], timeout_s=20, security=INSECURE) as bank:
            bank.open_account("busy", 0)
            bank.open_account("other", 0)
        stop = False

        def hammer() -> None:
            with LedgerClient([address], timeout_s=20, security=INSECURE) as busy:
                while not stop:
                    busy.deposit("busy", 1)

        threads = [threading.Thread(target=hammer) for _ in range(4)]
        for thread in threads:
            thread.start()
        try:
            with LedgerClient([address], timeout_s=20, security=INSECURE) as bank:
                done = sum(bank.deposit("other", 1).balance > 0 for _ in range(5))
        finally:
            stop = True
            for thread in threads:
                thread.join()
        return done, 5

    done, wanted = await asyncio.to_thread(busy_and_other)
    assert done == wanted


async def test_a_bad_request_ends_a_stream_while_replies_are_written(servers: Servers) -> None:
    # A stream's reader that aborted the call itself raced the handler writing a reply:
    # gRPC then never finished the call, and the client waited out its deadline (about
    # one stream in 30 did). The refusal must end every such stream at once.
    for index in range(3):
        await servers.start(index)
    batch = pb.StreamRequest(tag=1, timeout_ms=1_000).SerializeToString()
    async with grpc.aio.insecure_channel(servers.address(1)) as channel:
        stream = channel.stream_stream("/ledger.v1.Ledger/SubmitStream",
                                       response_deserializer=pb.StreamReply.FromString)
        for _ in range(100):
            call = stream(iter([batch, b"\xea\x81=\xa3\x8b"]), timeout=20)
            with pytest.raises(grpc.aio.AioRpcError) as ended:
                async for reply in call:
                    assert reply.tag == 1
            assert ended.value.code() == grpc.StatusCode.INVALID_ARGUMENT
