"""Peer messages that break a bound are dropped one by one at the wire; the node, the
rest of the batch and every other account carry on (in-process nodes, real gRPC)."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from ledger.client import LedgerClient, Unavailable
from ledger.node import peer_codec
from ledger.paxos import Ballot, Prepare
from ledger.paxos.ballot import NULL_BALLOT
from ledger.security.tls import INSECURE
from ledger.storage.memory import MemoryStore
from ledger.v1 import replica_pb2 as pb
from ledger.v1 import replica_pb2_grpc as pb_grpc
from tests.support.hostile import TEST_INCARNATION
from tests.support.in_process import Servers


def accept(account: str, round_: int, node_index: int, slot: int = 0) -> pb.PeerMessage:
    return pb.PeerMessage(accept=pb.Accept(
        account=account, slot=slot, ballot=pb.Ballot(round=round_, node_index=node_index),
        value=b"forged"))


def prepare(account: str, round_: int, node_index: int) -> pb.PeerMessage:
    return pb.PeerMessage(prepare=pb.Prepare(
        account=account, from_slot=0, ballot=pb.Ballot(round=round_, node_index=node_index)))


async def step(servers: Servers, index: int, messages: list[pb.PeerMessage]) -> pb.StepReply:
    """Messages to node `index` as another member sends them."""
    source = 1 if index == 0 else 0
    running = servers.nodes[source]
    # The member's own incarnation when it runs (its peers recorded it); else any.
    incarnation = TEST_INCARNATION if running is None else peer_codec.incarnation_pb(
        running.identity.incarnation)
    async with grpc.aio.insecure_channel(servers.address(index)) as channel:
        return await pb_grpc.ReplicaStub(channel).Step(pb.StepRequest(
            cluster_fingerprint=servers.cluster.fingerprint, source_node_id=f"n{source + 1}",
            messages=messages, source_incarnation=incarnation,
            source_durable_seq=0 if running is None else running.store.durable_seq()),
            timeout=10)


async def dropped(servers: Servers, index: int) -> int:
    async with grpc.aio.insecure_channel(servers.address(index)) as channel:
        status = await pb_grpc.AdminStub(channel).Status(pb.StatusRequest(limit=1), timeout=10)
    return status.counters.get("peer_messages_dropped", 0)


def store_of(servers: Servers, index: int) -> MemoryStore:
    node = servers.nodes[index]
    assert node is not None and isinstance(node.store, MemoryStore)
    return node.store


HOSTILE = {
    # Stored as a durable vote, then a recovery timer indexed a per-node table with 99:
    # the driver died, and again after every restart.
    "a vote under a ballot of node 99": accept("victim", 5, 99),
    # Promised durably; the next proposal's round could not be encoded.
    "a prepare with round 2^64-1": prepare("victim", 2**64 - 1, 1),
    # The store's key builder raised ValueError and the driver task died.
    "an account with a NUL byte": accept("vic\x00tim", 5, 1),
    "an account past LMDB's key limit": accept("v" * 600, 5, 1),
}


@pytest.mark.parametrize("name", HOSTILE)
async def test_a_hostile_message_is_dropped_alone_and_counted(servers: Servers, name: str
                                                              ) -> None:
    await servers.start(0)
    honest = peer_codec.to_pb(Prepare("bystander", 0, Ballot(7, 1)))
    reply = await step(servers, 0, [HOSTILE[name], honest])
    assert any(m.WhichOneof("body") == "promise" and m.promise.account == "bystander"
               for m in reply.messages), "the rest of the batch was handled"
    store = store_of(servers, 0)
    assert store.account_record("victim").promised == NULL_BALLOT
    assert not store.account_record("victim").accepted
    assert store.accounts_with_votes() == []
    assert await dropped(servers, 0) == 1
    node = servers.nodes[0]
    assert node is not None and node._driver_task is not None
    assert not node._driver_task.done(), "the driver carries on"


async def test_a_promise_to_a_non_member_never_becomes_the_leader_hint(servers: Servers) -> None:
    # A promised ballot of node 99 became the account's leader hint; forwarding indexed
    # the member list with it and every write to the account hung until its deadline.
    for index in range(3):
        await servers.start(index)
    for index in range(3):
        await step(servers, index, [prepare("hinted", 9, 99)])
        assert await dropped(servers, index) == 1
    addresses = [servers.address(index) for index in range(3)]

    def write() -> int:  # a blocking client: off the loop the nodes run on
        with LedgerClient(addresses, timeout_s=10, security=INSECURE) as bank:
            bank.open_account("hinted", 10)
            return bank.deposit("hinted", 5).balance

    assert await asyncio.to_thread(write) == 15


async def test_a_call_claiming_the_nodes_own_id_is_refused(servers: Servers) -> None:
    await servers.start(0)
    async with grpc.aio.insecure_channel(servers.address(0)) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await pb_grpc.ReplicaStub(channel).Step(pb.StepRequest(
                cluster_fingerprint=servers.cluster.fingerprint, source_node_id="n1"),
                timeout=10)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def learn(account: str, slot: int, value: bytes) -> pb.PeerMessage:
    return pb.PeerMessage(learn=pb.Learn(account=account, slot=slot, value=value))


async def test_conflicting_chosen_values_quarantine_one_account_not_the_node(
    servers: Servers,
) -> None:
    # Two Learns with different values for one slot tripped an assertion and stopped
    # the node; a forged one was applied without question.
    for index in range(3):
        await servers.start(index)
    addresses = [servers.address(index) for index in range(3)]

    def open_accounts() -> None:
        with LedgerClient(addresses, timeout_s=10, security=INSECURE) as bank:
            bank.open_account("contested", 100)
            bank.open_account("bystander", 7)

    await asyncio.to_thread(open_accounts)
    node = servers.nodes[0]
    assert node is not None
    for _ in range(100):  # node 0 has applied the opening of "contested"
        if node.machine.account("contested").state.opened:
            break
        await asyncio.sleep(0.05)
    forged = (await asyncio.to_thread(_log_value, addresses[0], "contested"))[:-1] + b"\x01"
    await step(servers, 0, [learn("contested", 0, forged)])

    async with grpc.aio.insecure_channel(servers.address(0)) as channel:
        status = await pb_grpc.AdminStub(channel).Status(pb.StatusRequest(), timeout=10)
    assert status.counters["alarms"] == 1
    assert node._driver_task is not None and not node._driver_task.done()

    def use_node_0() -> tuple[str, int]:
        with LedgerClient([addresses[0]], timeout_s=3, security=INSECURE) as bank:
            try:
                bank.deposit("contested", 5)
            except Unavailable as refused:
                quarantined = str(refused)
            return quarantined, bank.deposit("bystander", 1).balance

    quarantined, bystander = await asyncio.to_thread(use_node_0)
    assert "quarantined on this node" in quarantined and "two values for slot 0" in quarantined
    assert bystander == 8

    def use_the_others() -> int:  # the other replicas still serve the account
        with LedgerClient(addresses[1:], timeout_s=10, security=INSECURE) as bank:
            return bank.deposit("contested", 5).balance

    assert await asyncio.to_thread(use_the_others) == 105


def _log_value(address: str, account: str) -> bytes:
    with grpc.insecure_channel(address) as channel:
        reply = pb_grpc.AdminStub(channel).Log(pb.LogRequest(account=account, limit=1),
                                               timeout=5)
    return reply.values[0]
