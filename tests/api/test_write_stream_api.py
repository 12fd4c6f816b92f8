"""`Ledger.SubmitStream` over raw gRPC (in-process nodes, plaintext): batches answered by
tag, one result per operation in order; a batch refused whole (too many operations, the
node busy) is answered without ending the stream; bytes that are not a request end it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import grpc
import pytest

from ledger import errors
from ledger.server import write_stream
from ledger.server.forward_stream import ForwardStream
from ledger.server.forwarder import FORWARDED
from ledger.server.limits import ServerLimits
from ledger.server.node_server import NodeServer
from ledger.v1 import ledger_pb2 as pb
from ledger.v1 import ledger_pb2_grpc as pb_grpc
from tests.support.in_process import Servers

OK = grpc.StatusCode.OK.value[0]
INVALID_ARGUMENT = grpc.StatusCode.INVALID_ARGUMENT.value[0]
FAILED_PRECONDITION = grpc.StatusCode.FAILED_PRECONDITION.value[0]
NOT_FOUND = grpc.StatusCode.NOT_FOUND.value[0]
RESOURCE_EXHAUSTED = grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]


def opening(account: str, balance: int, request_id: str) -> pb.BatchOperation:
    return pb.BatchOperation(open_account=pb.OpenAccountRequest(
        account_id=account, opening_balance=balance, request_id=request_id))


def deposit(account: str, amount: int, request_id: str) -> pb.BatchOperation:
    return pb.BatchOperation(deposit=pb.DepositRequest(
        account_id=account, amount=amount, request_id=request_id))


def withdrawal(account: str, amount: int, request_id: str) -> pb.BatchOperation:
    return pb.BatchOperation(withdraw=pb.WithdrawRequest(
        account_id=account, amount=amount, request_id=request_id))


async def start_all(servers: Servers) -> None:
    await asyncio.gather(*(servers.start(index) for index in range(3)))


async def read_reply(call: grpc.aio.StreamStreamCall) -> pb.StreamReply:
    reply = await asyncio.wait_for(call.read(), timeout=30)
    assert reply is not grpc.aio.EOF, "the stream ended before answering"
    assert isinstance(reply, pb.StreamReply)
    return reply


async def test_batches_are_answered_by_tag_with_a_result_per_operation_in_order(
        servers: Servers) -> None:
    await start_all(servers)
    async with grpc.aio.insecure_channel(servers.address(0)) as channel:
        stub = pb_grpc.LedgerStub(channel)
        call = stub.SubmitStream(timeout=60)
        await call.write(pb.StreamRequest(tag=11, timeout_ms=20_000, operations=[
            opening("st-a", 100, "st-a-open"), deposit("st-a", 5, "st-a-1"),
            withdrawal("st-a", 500, "st-a-2"), deposit("st-a", 7, "st-a-3")]))
        await call.write(pb.StreamRequest(tag=12, timeout_ms=20_000, operations=[
            opening("st-b", 1, "st-b-open"), deposit("st-never", 1, "st-never-1")]))
        first = {reply.tag: reply for reply in [await read_reply(call), await read_reply(call)]}
        # A third batch on the same stream, after the others were answered.
        await call.write(pb.StreamRequest(tag=13, operations=[
            withdrawal("st-a", 12, "st-a-4"), deposit("st-b", 2, "st-b-1")]))
        third = await read_reply(call)
        await call.done_writing()
        assert await call.read() is grpc.aio.EOF  # half-closed and all answered: it ends
        assert await call.code() == grpc.StatusCode.OK

        assert sorted(first) == [11, 12] and third.tag == 13
        a_results, b_results = first[11].results, first[12].results
        assert [r.code for r in a_results] == [OK, OK, FAILED_PRECONDITION, OK]
        assert [(r.reply.account_id, r.reply.position, r.reply.balance)
                for r in a_results if r.code == OK] == [
            ("st-a", 0, 100), ("st-a", 1, 105), ("st-a", 3, 112)]
        refused = a_results[2]
        assert (refused.refusal.reason, refused.refusal.balance, refused.refusal.amount,
                refused.refusal.position) == ("insufficient-funds", 105, 500, 2)
        assert [r.code for r in b_results] == [OK, NOT_FOUND]
        assert "st-never" in b_results[1].message
        assert [(r.code, r.reply.position, r.reply.balance) for r in third.results] == [
            (OK, 4, 100), (OK, 1, 3)]

        history = await stub.GetHistory(pb.GetHistoryRequest(account_id="st-a"), timeout=10)
    assert [(e.position, e.request_id, e.rejected) for e in history.entries] == [
        (0, "st-a-open", False), (1, "st-a-1", False), (2, "st-a-2", True),
        (3, "st-a-3", False), (4, "st-a-4", False)]
    assert {e.principal for e in history.entries} == {"anonymous"}


async def test_a_batch_of_too_many_operations_is_refused_in_place_and_the_stream_goes_on(
        servers: Servers) -> None:
    await start_all(servers)
    async with grpc.aio.insecure_channel(servers.address(0)) as channel:
        call = pb_grpc.LedgerStub(channel).SubmitStream(timeout=60)
        await call.write(pb.StreamRequest(tag=1, operations=[pb.BatchOperation()] * 10_001))
        refused = await read_reply(call)
        await call.write(pb.StreamRequest(tag=2, operations=[opening("st-after", 3, "st-o")]))
        later = await read_reply(call)
        await call.done_writing()
        assert await call.read() is grpc.aio.EOF
    assert refused.tag == 1 and len(refused.results) == 10_001
    assert {r.code for r in refused.results} == {INVALID_ARGUMENT}
    assert "at most 10000 operations, not 10001" in refused.results[0].message
    assert later.tag == 2
    assert [(r.code, r.reply.account_id, r.reply.balance) for r in later.results] == [
        (OK, "st-after", 3)]


async def wait_until(check: Callable[[], bool], what: str) -> None:
    """Poll `check()` every 10 ms for up to 10 s (the loop keeps serving meanwhile)."""
    for _ in range(1_000):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"not within 10 s: {what}")


async def test_a_batch_past_the_calls_in_flight_is_refused_busy_without_ending_the_stream(
        servers: Servers) -> None:
    # Alone, the node cannot decide anything: a read of an unknown account waits for a
    # majority until its deadline, holding the one place in flight.
    node: NodeServer = await servers.start(
        0, limits=ServerLimits(max_client_calls_in_flight=1))
    async with grpc.aio.insecure_channel(servers.address(0)) as channel:
        stub = pb_grpc.LedgerStub(channel)
        waiting = asyncio.ensure_future(
            stub.GetBalance(pb.GetBalanceRequest(account_id="nobody"), timeout=30))
        await wait_until(lambda: node.front_door.in_flight == 1, "the read holds the place")
        call = stub.SubmitStream(timeout=60)
        await call.write(pb.StreamRequest(tag=5, operations=[
            deposit("st-busy", 1, "st-busy-1"), opening("st-busy", 1, "st-busy-0")]))
        busy = await read_reply(call)
        assert busy.tag == 5
        assert [r.code for r in busy.results] == [RESOURCE_EXHAUSTED] * 2
        assert all("busy" in r.message for r in busy.results), busy.results[0].message
        assert node.front_door.refused == 1

        # Once the place is free, the same stream's next batch is worked on (an empty
        # operation needs no majority: it is answered INVALID_ARGUMENT, not busy).
        waiting.cancel()
        await wait_until(lambda: node.front_door.in_flight == 0, "the read let go")
        await call.write(pb.StreamRequest(tag=6, operations=[pb.BatchOperation()]))
        later = await read_reply(call)
        await call.done_writing()
        assert await call.read() is grpc.aio.EOF
    assert later.tag == 6 and [r.code for r in later.results] == [INVALID_ARGUMENT]
    assert node.front_door.refused == 1
    assert node.front_door.in_flight == 0  # every batch gave its place back


@pytest.mark.parametrize("payload", [b"\xff\xff\xff", b"\x12\x80\x80"])
async def test_bytes_that_are_not_a_stream_request_end_the_stream_invalid_argument(
        servers: Servers, payload: bytes) -> None:
    await servers.start(0)
    async with grpc.aio.insecure_channel(servers.address(0)) as channel:
        call = channel.stream_stream("/ledger.v1.Ledger/SubmitStream")(timeout=30)
        # A well-formed batch first (an empty operation: answered without a majority).
        await call.write(pb.StreamRequest(tag=3, operations=[pb.BatchOperation()])
                         .SerializeToString())
        raw = await asyncio.wait_for(call.read(), timeout=30)
        assert isinstance(raw, bytes)
        answered = pb.StreamReply.FromString(raw)
        assert answered.tag == 3 and [r.code for r in answered.results] == [INVALID_ARGUMENT]
        await call.write(payload)
        with pytest.raises(grpc.aio.AioRpcError) as ended:
            await asyncio.wait_for(call.read(), timeout=30)
    assert ended.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "not a valid ledger.v1.StreamRequest" in (ended.value.details() or "")


async def test_an_invalid_operation_is_refused_in_place_and_the_rest_of_its_batch_applies(
        servers: Servers) -> None:
    await start_all(servers)
    async with grpc.aio.insecure_channel(servers.address(0)) as channel:
        stub = pb_grpc.LedgerStub(channel)
        call = stub.SubmitStream(timeout=60)
        await call.write(pb.StreamRequest(tag=9, timeout_ms=20_000, operations=[
            opening("st-mixed", 10, "st-m-open"), deposit("st mixed", 1, "st-m-bad"),
            deposit("st-mixed", 5, "st-m-1"), opening("st-also", 4, "st-also-open")]))
        await call.done_writing()  # half-closed at once: the batch is still answered
        reply = await read_reply(call)
        assert await call.read() is grpc.aio.EOF
        assert await call.code() == grpc.StatusCode.OK
        assert reply.tag == 9
        assert [r.code for r in reply.results] == [OK, INVALID_ARGUMENT, OK, OK]
        assert "'st mixed'" in reply.results[1].message
        assert [(r.reply.account_id, r.reply.balance) for r in reply.results
                if r.code == OK] == [("st-mixed", 10), ("st-mixed", 15), ("st-also", 4)]
        mixed = await stub.GetBalance(pb.GetBalanceRequest(account_id="st-mixed"), timeout=10)
        also = await stub.GetBalance(pb.GetBalanceRequest(account_id="st-also"), timeout=10)
        history = await stub.GetHistory(pb.GetHistoryRequest(account_id="st-mixed"),
                                        timeout=10)
    assert (mixed.balance, mixed.position) == (15, 1)
    assert also.balance == 4
    assert [e.request_id for e in history.entries] == ["st-m-open", "st-m-1"]


async def test_a_node_forwards_many_batches_in_one_stream_message(servers: Servers) -> None:
    # What a node does with writes for accounts another node leads: each account's
    # worker forwards its own batch; those of one turn leave as one stream message.
    for index in range(3):
        await servers.start(index)
    async with grpc.aio.insecure_channel(servers.address(0)) as channel:
        stub = pb_grpc.LedgerStub(channel)
        forwards = ForwardStream(lambda: stub.SubmitStream(metadata=(FORWARDED,)), "n1")
        try:
            opened = await forwards.submit([opening(f"fw-{i}", i, f"fw-open-{i}")
                                            for i in range(3)], ["alice"] * 3, 10)
            assert [r.code for r in opened] == [OK] * 3
            sent = forwards.messages_sent
            results = await asyncio.gather(*(
                forwards.submit([deposit(f"fw-{i}", 10, f"fw-dep-{i}")], [f"teller-{i}"], 10)
                for i in range(3)))
            assert [r.reply.balance for [r] in results] == [10, 11, 12]
            assert forwards.messages_sent == sent + 1  # three forwards, one message
        finally:
            await forwards.close()
        history = await stub.GetHistory(pb.GetHistoryRequest(account_id="fw-2"), timeout=10)
        assert [e.principal for e in history.entries] == ["alice", "teller-2"]

    # A node that is gone: the forward fails Unavailable (the caller then decides the
    # writes itself), and so does the next one, on a new stream.
    node = servers.nodes[0]
    assert node is not None
    async with grpc.aio.insecure_channel(servers.address(0)) as channel:
        stub = pb_grpc.LedgerStub(channel)
        forwards = ForwardStream(lambda: stub.SubmitStream(metadata=(FORWARDED,)), "n1")
        await node.stop()
        servers.nodes[0] = None
        for attempt in range(2):
            with pytest.raises(errors.Unavailable) as gone:
                await forwards.submit([deposit("fw-0", 1, f"fw-gone-{attempt}")], ["x"], 5)
            assert "node n1 did not decide forwarded writes" in str(gone.value)
        await forwards.close()


async def test_a_batch_that_fails_unexpectedly_ends_the_stream_rather_than_guess(
        servers: Servers, monkeypatch: pytest.MonkeyPatch) -> None:
    node = await servers.start(0)

    async def planted_bug(*_: object) -> list[object]:
        raise RuntimeError("planted")

    monkeypatch.setattr(node.bank, "submit", planted_bug)
    batch = pb.StreamRequest(tag=1, operations=[deposit("st-bug", 1, "st-bug-1")])
    async with grpc.aio.insecure_channel(servers.address(0)) as channel:
        stream = pb_grpc.LedgerStub(channel).SubmitStream(iter([batch]), timeout=20)
        with pytest.raises(grpc.aio.AioRpcError) as ended:
            async for _ in stream:
                pass
    assert ended.value.code() == grpc.StatusCode.INTERNAL
    assert "failed to decide a batch: RuntimeError('planted')" in (ended.value.details() or "")
    assert node.front_door.in_flight == 0


async def test_a_stream_that_carries_nothing_is_ended_by_the_node(
        servers: Servers, monkeypatch: pytest.MonkeyPatch) -> None:
    # An open stream holds one of the node's call places (gRPC's limit, peers' calls
    # included): a client that opens streams and leaves them idle must not use them up.
    monkeypatch.setattr(write_stream, "MAX_IDLE_S", 0.3)
    await servers.start(0)
    never = asyncio.Event()

    async def nothing() -> AsyncIterator[pb.StreamRequest]:
        await never.wait()
        yield pb.StreamRequest()

    async with grpc.aio.insecure_channel(servers.address(0)) as channel:
        call = pb_grpc.LedgerStub(channel).SubmitStream(nothing(), timeout=30)
        replies = [reply async for reply in call]
        assert replies == []
        assert await call.code() == grpc.StatusCode.OK
    never.set()
