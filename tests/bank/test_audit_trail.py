"""The audit trail: every operation records the principal that asked for it, in the log,
in the history and in GetHistory's entries; only members may name other principals.

Servers run in-process (real gRPC on loopback, insecure: every caller is "anonymous",
which holds every role). Where a test needs a caller that is not a member, or one whose
name differs from the node forwarding its write, it calls a node's Ledger servicer
itself with that principal made current, as the front door does; without TLS nothing
else can authenticate as someone else.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import grpc
import pytest

from ledger import errors
from ledger.accounts import Kind, Operation, WriteRequest
from ledger.bank import codec
from ledger.bank.requests import PendingWrite, as_write, operation_for
from ledger.bank.state_machine import LedgerStateMachine
from ledger.paxos import Committed
from ledger.security.principal import (
    ANONYMOUS,
    MAX_PRINCIPAL_CHARS,
    Principal,
    Role,
    set_current_principal,
)
from ledger.server import on_behalf
from ledger.server.forwarder import FORWARDED
from ledger.server.ledger_servicer import LedgerServicer
from ledger.server.node_server import NodeServer
from ledger.storage.memory import MemoryStore
from ledger.v1 import ledger_pb2 as pb
from ledger.v1 import ledger_pb2_grpc as pb_grpc
from ledger.v1 import records_pb2
from tests.support.in_process import Servers

TELLER = Principal("alice@branch", frozenset({Role.TELLER}))
MEMBER = Principal("n2", frozenset({Role.MEMBER}))

# ------------------------------------------------------------------ the codec


def test_the_codec_round_trips_principals() -> None:
    entry = [Operation(Kind.OPEN, 5, "o", "", 1, "anonymous"),
             Operation(Kind.DEPOSIT, 7, "d", "memo", 2, "alice@branch"),
             Operation(Kind.WITHDRAWAL, 1, "w", "", 3, "x" * MAX_PRINCIPAL_CHARS),
             Operation(Kind.DEPOSIT, 1, "old", "", 4)]  # written before principals: ""
    assert codec.decode_entry(codec.encode_entry(entry)) == entry


def test_an_entry_without_principals_reads_as_before() -> None:
    """Records written before this field existed decode with principal ""."""
    old = records_pb2.LogEntry(operations=[records_pb2.LogOperation(
        kind=records_pb2.OPERATION_KIND_DEPOSIT, amount=3, request_id="r")])
    assert codec.decode_entry(old.SerializeToString()) == [Operation(Kind.DEPOSIT, 3, "r")]


@pytest.mark.parametrize("principal", [
    "x" * (MAX_PRINCIPAL_CHARS + 1), "bad name", "-leading", "new\nline", "é", "a/b"])
def test_a_malformed_principal_from_disk_or_a_peer_makes_the_entry_malformed(
        principal: str) -> None:
    value = records_pb2.LogEntry(operations=[records_pb2.LogOperation(
        kind=records_pb2.OPERATION_KIND_DEPOSIT, amount=3, request_id="r",
        principal=principal)]).SerializeToString()
    with pytest.raises(codec.MalformedEntry, match="principal"):
        codec.decode_entry(value)


def test_history_carries_each_operations_principal() -> None:
    store = MemoryStore(LedgerStateMachine.TABLES)
    machine = LedgerStateMachine(store)
    entries = [[Operation(Kind.OPEN, 10, "o", "", 1, "anonymous")],
               [Operation(Kind.DEPOSIT, 5, "d", "in", 2, "alice@branch"),
                Operation(Kind.WITHDRAWAL, 99, "w", "", 3, "bob")],  # refused: still recorded
               [Operation(Kind.DEPOSIT, 1, "old")]]
    for slot, entry in enumerate(entries):
        store.stage(machine.apply([Committed("acct", slot, codec.encode_entry(entry))]))
        store.stage(machine.flush())
        store.sync()
    expected = ["anonymous", "alice@branch", "bob", ""]
    assert [e.principal for e in machine.history("acct", 0, 10)] == expected
    reloaded = LedgerStateMachine(store)  # from the stored records, not a cache
    assert [e.principal for e in reloaded.history("acct", 0, 10)] == expected


# ------------------------------------------------------- requests and forwarding


async def test_a_write_keeps_its_principal_into_the_log_and_back_out_to_forward() -> None:
    write = WriteRequest(Kind.DEPOSIT, "acct", 5, "r1", "memo", "alice@branch")
    operation = operation_for(write, now_ms=7)
    assert operation == Operation(Kind.DEPOSIT, 5, "r1", "memo", 7, "alice@branch")
    opening = operation_for(WriteRequest(Kind.OPEN, "acct", 5, "r0", principal="bob"), 7)
    assert opening.principal == "bob"
    pending = PendingWrite("acct", operation, asyncio.get_running_loop().create_future(), 0.0)
    assert as_write(pending) == write


@pytest.mark.parametrize("principal", ["bad name", "x" * (MAX_PRINCIPAL_CHARS + 1)])
def test_a_write_with_a_malformed_principal_is_refused_before_the_log(principal: str) -> None:
    with pytest.raises(errors.InvalidRequest):
        operation_for(WriteRequest(Kind.DEPOSIT, "acct", 5, "r1", "", principal), 7)


# ------------------------------------------------ on_behalf_of: the pure rules


def test_without_on_behalf_of_every_operation_is_the_callers() -> None:
    assert on_behalf.submit_principals(TELLER, [], 3) == ["alice@branch"] * 3
    assert on_behalf.submit_principals(MEMBER, [], 2) == ["n2", "n2"]


def test_a_member_names_one_principal_per_operation() -> None:
    assert on_behalf.submit_principals(MEMBER, ["a", "b"], 2) == ["a", "b"]
    assert on_behalf.submit_principals(ANONYMOUS, ["a"], 1) == ["a"]  # --insecure: a member


def test_only_members_may_submit_on_behalf_of_others() -> None:
    with pytest.raises(on_behalf.OnBehalfDenied, match="only cluster members"):
        on_behalf.submit_principals(TELLER, ["alice@branch"], 1)  # even its own name


@pytest.mark.parametrize(("names", "operations"), [
    (["a"], 2), (["a", "b"], 1), (["a"], 0), (["bad name"], 1), ([""], 1),
    (["x" * (MAX_PRINCIPAL_CHARS + 1)], 1)])
def test_on_behalf_of_must_name_one_valid_principal_per_operation(
        names: list[str], operations: int) -> None:
    with pytest.raises(errors.InvalidRequest):
        on_behalf.submit_principals(MEMBER, names, operations)


def test_the_forwarding_marker_counts_only_from_members() -> None:
    assert on_behalf.forwarded(MEMBER, [FORWARDED])
    assert not on_behalf.forwarded(MEMBER, [("other", "1")])
    assert not on_behalf.forwarded(TELLER, [FORWARDED])


# ------------------------------------------------------------ real nodes


class Aborted(Exception):
    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(code, details)
        self.code = code
        self.details = details


class Context:
    """What the Ledger servicer asks of a gRPC context, for calling it directly."""

    def __init__(self, metadata: Sequence[tuple[str, str]] = ()) -> None:
        self.metadata = tuple(metadata)

    def time_remaining(self) -> float:
        return 10.0

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return self.metadata

    def set_trailing_metadata(self, metadata: object) -> None:
        pass

    async def abort(self, code: grpc.StatusCode, details: str) -> None:
        raise Aborted(code, details)


async def start(servers: Servers) -> list[NodeServer]:
    nodes = [await servers.start(index) for index in range(3)]
    for node in nodes:
        await asyncio.wait_for(node.admitted.wait(), 30)
    return nodes


def stub(channel: grpc.aio.Channel) -> pb_grpc.LedgerStub:
    return pb_grpc.LedgerStub(channel)


async def history(servers: Servers, account: str) -> list[tuple[str, int, str]]:
    async with grpc.aio.insecure_channel(servers.address(0)) as channel:
        reply = await stub(channel).GetHistory(pb.GetHistoryRequest(account_id=account),
                                               timeout=10)
    return [(e.request_id, e.amount, e.principal) for e in reply.entries]


async def as_caller(principal: Principal, node: NodeServer, call: str, request: object,
                    metadata: Sequence[tuple[str, str]] = ()) -> object:
    """Call `node`'s Ledger servicer as `principal` (what the front door does with TLS)."""
    servicer = LedgerServicer(node.bank, 10.0)

    async def run() -> object:
        set_current_principal(principal)  # in this task's context only
        return await getattr(servicer, call)(request, Context(metadata))

    return await asyncio.create_task(run())


async def wait_for_leader(node: NodeServer, account: str, leader: int) -> None:
    for _ in range(500):
        if node.driver.leader_hint(account) == leader:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"the node never learned that node {leader} leads {account!r}")


async def test_get_history_carries_the_principal_of_every_write(servers: Servers) -> None:
    await start(servers)
    async with grpc.aio.insecure_channel(servers.address(1)) as channel:
        ledger = stub(channel)
        await ledger.OpenAccount(pb.OpenAccountRequest(
            account_id="audited", opening_balance=10, request_id="o"), timeout=10)
        await ledger.Deposit(pb.DepositRequest(
            account_id="audited", amount=5, request_id="d"), timeout=10)
        with pytest.raises(grpc.aio.AioRpcError):  # refused, and recorded as asked
            await ledger.Withdraw(pb.WithdrawRequest(
                account_id="audited", amount=500, request_id="w"), timeout=10)
        await ledger.Submit(pb.SubmitRequest(operations=[pb.BatchOperation(
            deposit=pb.DepositRequest(account_id="audited", amount=1, request_id="s"))]),
            timeout=10)
    assert await history(servers, "audited") == [
        ("o", 10, "anonymous"), ("d", 5, "anonymous"), ("w", 500, "anonymous"),
        ("s", 1, "anonymous")]


async def test_a_member_names_the_principal_of_each_operation(servers: Servers) -> None:
    await start(servers)
    ops = [pb.BatchOperation(open_account=pb.OpenAccountRequest(
               account_id="behalf", opening_balance=1, request_id="o")),
           pb.BatchOperation(deposit=pb.DepositRequest(
               account_id="behalf", amount=2, request_id="d"))]
    async with grpc.aio.insecure_channel(servers.address(0)) as channel:
        ledger = stub(channel)
        for names in (["carol"], ["carol", "bad name"]):
            with pytest.raises(grpc.aio.AioRpcError) as invalid:
                await ledger.Submit(pb.SubmitRequest(operations=ops, on_behalf_of=names),
                                    timeout=10)
            assert invalid.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        # Under --insecure every caller is an anonymous member.
        reply = await ledger.Submit(pb.SubmitRequest(operations=ops,
                                                     on_behalf_of=["carol", "dave"]), timeout=10)
    assert [r.code for r in reply.results] == [0, 0]
    assert await history(servers, "behalf") == [("o", 1, "carol"), ("d", 2, "dave")]


async def test_on_behalf_of_from_a_non_member_is_denied_and_writes_nothing(
        servers: Servers) -> None:
    nodes = await start(servers)
    async with grpc.aio.insecure_channel(servers.address(0)) as channel:
        await stub(channel).OpenAccount(pb.OpenAccountRequest(
            account_id="guarded", opening_balance=10, request_id="o"), timeout=10)
    before = await history(servers, "guarded")
    request = pb.SubmitRequest(operations=[pb.BatchOperation(deposit=pb.DepositRequest(
        account_id="guarded", amount=5, request_id="forged"))], on_behalf_of=["mallory"])
    with pytest.raises(Aborted) as denied:
        await as_caller(TELLER, nodes[0], "Submit", request)
    assert denied.value.code == grpc.StatusCode.PERMISSION_DENIED
    assert "only cluster members may submit on behalf of another principal" in \
        denied.value.details
    assert await history(servers, "guarded") == before == [("o", 10, "anonymous")]
    # The same operation without on_behalf_of is the teller's own.
    reply = await as_caller(TELLER, nodes[0], "Submit", pb.SubmitRequest(
        operations=request.operations))
    assert isinstance(reply, pb.SubmitReply) and reply.results[0].code == 0
    assert await history(servers, "guarded") == [("o", 10, "anonymous"),
                                                 ("forged", 5, "alice@branch")]


async def test_a_forwarded_write_keeps_its_original_principal(servers: Servers) -> None:
    nodes = await start(servers)
    async with grpc.aio.insecure_channel(servers.address(0)) as channel:
        await stub(channel).OpenAccount(pb.OpenAccountRequest(
            account_id="led", opening_balance=10, request_id="o"), timeout=10)
    await wait_for_leader(nodes[1], "led", 0)  # node 0 holds the range promise
    # A teller's deposit through node 1: node 1 (as itself, a member) forwards it to
    # node 0, naming the teller; node 0 records the teller, not the forwarding node.
    before = nodes[1].bank.forwarded_batches
    await as_caller(TELLER, nodes[1], "Deposit", pb.DepositRequest(
        account_id="led", amount=5, request_id="d1"))
    assert nodes[1].bank.forwarded_batches == before + 1
    # Through gRPC end to end, as an anonymous client of node 1.
    async with grpc.aio.insecure_channel(servers.address(1)) as channel:
        await stub(channel).Deposit(pb.DepositRequest(
            account_id="led", amount=1, request_id="d2"), timeout=10)
    assert nodes[1].bank.forwarded_batches == before + 2
    assert await history(servers, "led") == [
        ("o", 10, "anonymous"), ("d1", 5, "alice@branch"), ("d2", 1, "anonymous")]


async def test_the_forwarding_marker_from_a_non_member_is_ignored(servers: Servers) -> None:
    nodes = await start(servers)
    async with grpc.aio.insecure_channel(servers.address(0)) as channel:
        await stub(channel).OpenAccount(pb.OpenAccountRequest(
            account_id="marked", opening_balance=10, request_id="o"), timeout=10)
    await wait_for_leader(nodes[1], "marked", 0)
    before = nodes[1].bank.forwarded_batches
    reply = await as_caller(TELLER, nodes[1], "Submit", pb.SubmitRequest(operations=[
        pb.BatchOperation(deposit=pb.DepositRequest(account_id="marked", amount=5,
                                                    request_id="d"))]), metadata=[FORWARDED])
    assert isinstance(reply, pb.SubmitReply) and reply.results[0].code == 0
    # Treated as not forwarded: node 1 sent it on to the leader rather than fight it.
    assert nodes[1].bank.forwarded_batches == before + 1
    assert await history(servers, "marked") == [("o", 10, "anonymous"),
                                                ("d", 5, "alice@branch")]
