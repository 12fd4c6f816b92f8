"""The node driver and servers in one process, over real gRPC on loopback, memory stores."""

from __future__ import annotations

import asyncio
import random

import grpc
import pytest

from ledger.node import peer_codec
from ledger.node.consensus import NoQuorum, StorageUnavailable
from ledger.node.driver import NodeDriver
from ledger.node.peer_limits import PeerLimits
from ledger.paxos import Ballot, Envelope, Learn, PaxosConfig, Prepare, Promise, TailsRequest
from ledger.storage.base import StorageFull
from ledger.storage.memory import MemoryStore
from ledger.v1 import replica_pb2 as pb
from ledger.v1 import replica_pb2_grpc as pb_grpc
from tests.support.hostile import TEST_INCARNATION
from tests.support.in_process import Servers
from tests.support.state_machines import AppliedSlots


async def test_writes_through_any_node_are_chosen_everywhere(servers: Servers) -> None:
    nodes = [await servers.start(i) for i in range(3)]
    await nodes[0].bank.open_account("a", 0, "open", 5)
    results = [await nodes[i % 3].bank.deposit("a", 1, f"d{i}", "", 5) for i in range(30)]
    assert [r.position for r in results] == list(range(1, 31))
    assert results[-1].balance == 30
    for _ in range(100):
        if all(n.machine.account("a").state.balance == 30 for n in nodes):
            break
        await asyncio.sleep(0.05)
    assert len({n.store.account_summary("a") for n in nodes}) == 1


async def test_without_a_majority_a_proposal_ends_with_no_quorum(servers: Servers) -> None:
    node = await servers.start(0)
    with pytest.raises(NoQuorum, match="may or may not"):
        await node.driver.propose("a", b"v", timeout_s=0.5)


async def test_a_peer_with_another_cluster_configuration_is_refused(servers: Servers) -> None:
    await servers.start(0)
    async with grpc.aio.insecure_channel(servers.address(0)) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await pb_grpc.ReplicaStub(channel).Step(
                pb.StepRequest(cluster_fingerprint="0" * 16, source_node_id="n2"), timeout=5)
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "cluster configuration mismatch" in (refused.value.details() or "")


async def test_a_peer_stream_answers_every_request_once_and_refuses_a_stranger(
    servers: Servers,
) -> None:
    await servers.start(0)
    fingerprint = servers.cluster.fingerprint
    prepare = peer_codec.to_pb(Prepare("a", 0, Ballot(5, 1)))
    async with grpc.aio.insecure_channel(servers.address(0)) as channel:
        stream = pb_grpc.ReplicaStub(channel).Stream()
        # A request with a question, then one with nothing to answer: both are counted.
        await stream.write(pb.StepRequest(cluster_fingerprint=fingerprint,
                                          source_node_id="n2", messages=[prepare],
                                          source_incarnation=TEST_INCARNATION))
        await stream.write(pb.StepRequest(cluster_fingerprint=fingerprint,
                                          source_node_id="n2",
                                          source_incarnation=TEST_INCARNATION))
        await stream.done_writing()  # half-closed: the answers still come, then the end
        answered, kinds = 0, []
        while (reply := await asyncio.wait_for(stream.read(), timeout=10)) != grpc.aio.EOF:
            answered += reply.requests_answered
            kinds += [type(peer_codec.from_pb(m, PeerLimits(3))) for m in reply.messages]
        assert answered == 2
        assert [k for k in kinds if k is not TailsRequest] == [Promise]

        stranger = pb_grpc.ReplicaStub(channel).Stream()
        await stranger.write(pb.StepRequest(cluster_fingerprint="0" * 16, source_node_id="n2"))
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await asyncio.wait_for(stranger.read(), timeout=10)
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "cluster configuration mismatch" in (refused.value.details() or "")


class FlakyDisk(MemoryStore):
    def __init__(self) -> None:
        super().__init__(AppliedSlots.TABLES)
        self.full = False

    def sync(self) -> None:
        if self.full:
            raise StorageFull("disk full (test)")
        super().sync()


def make_driver(store: MemoryStore, sent: list[Envelope]) -> NodeDriver:
    return NodeDriver(0, PaxosConfig(cluster_size=3), store,
                      lambda peer, envelopes: sent.extend(envelopes), random.Random(0),
                      AppliedSlots(store))


def answer_kinds(answers: list[Envelope]) -> list[type]:
    """The kinds of a call's answers, without anti-entropy (its first TailsRequest goes to
    a random peer, so it may ride along)."""
    return [type(e.message) for e in answers if not isinstance(e.message, TailsRequest)]


async def test_a_promise_is_answered_only_once_it_is_durable() -> None:
    store, sent = FlakyDisk(), []
    driver = make_driver(store, sent)
    task = asyncio.create_task(driver.run())
    prepare = Prepare("a", 0, Ballot(5, 1))
    answers = await driver.deliver(1, [Envelope(1, 0, prepare)])
    assert answer_kinds(answers) == [Promise]
    assert store.synced.account_record("a").promised == Ballot(5, 1)
    driver.stop()
    await task


async def test_when_the_disk_is_full_nothing_is_answered_until_it_is_not() -> None:
    store, sent = FlakyDisk(), []
    driver = make_driver(store, sent)
    task = asyncio.create_task(driver.run())
    store.full = True
    answers = await driver.deliver(1, [Envelope(1, 0, Prepare("a", 0, Ballot(5, 1)))])
    assert answers == [] and driver.storage_error is not None
    with pytest.raises(StorageUnavailable, match="disk full"):
        await driver.propose("a", b"v", timeout_s=1)
    store.full = False
    answers = await driver.deliver(1, [Envelope(1, 0, Prepare("a", 0, Ballot(5, 1)))])
    assert answer_kinds(answers) == [Promise]
    assert driver.storage_error is None
    driver.stop()
    await task


async def test_a_turn_sees_its_own_earlier_writes() -> None:
    # One call brings a Learn and then a Prepare: the Promise must report the value
    # the Learn made chosen, so the turn must have staged it before the Prepare.
    store, sent = MemoryStore(AppliedSlots.TABLES), []
    driver = make_driver(store, sent)
    task = asyncio.create_task(driver.run())
    answers = await driver.deliver(1, [
        Envelope(1, 0, Learn("a", 0, b"opening")),
        Envelope(1, 0, Prepare("a", 0, Ballot(5, 1))),
    ])
    (promise,) = [e.message for e in answers if isinstance(e.message, Promise)]
    assert promise.chosen == (b"opening",)
    driver.stop()
    await task


async def test_proposals_in_flight_are_bounded_the_rest_wait_their_turn() -> None:
    from ledger.node.proposals import Proposal, ProposalQueues
    from ledger.paxos import PaxosNode

    store = MemoryStore(AppliedSlots.TABLES)
    core = PaxosNode(0, PaxosConfig(cluster_size=3), store, random.Random(0), 0)
    queues = ProposalQueues(max_in_flight=2)
    loop = asyncio.get_running_loop()
    for index in range(5):
        queues.add(Proposal(f"acct-{index}", b"v", loop.create_future()))
    started: list[str] = []
    queues.start(core, 0, lambda ready: None, started.append, lambda account: -1)
    assert started == ["acct-0", "acct-1"]
    assert not queues.startable() and queues.waiting() == 3


async def test_proposals_under_the_cap_take_turns_between_accounts() -> None:
    from ledger.node.proposals import Proposal, ProposalQueues
    from ledger.paxos import Outcome, PaxosNode

    store = MemoryStore(AppliedSlots.TABLES)
    core = PaxosNode(0, PaxosConfig(cluster_size=1), store, random.Random(0), 0)
    queues = ProposalQueues(max_in_flight=1)
    loop = asyncio.get_running_loop()
    started: list[str] = []
    for round_ in range(3):
        for account in ("busy", "other"):
            queues.add(Proposal(account, b"%s-%d" % (account.encode(), round_),
                                loop.create_future()))
    for _ in range(4):
        queues.start(core, 0, lambda ready: store.stage(ready.writes), started.append,
                     lambda account: -1)
        account = started[-1]
        proposal = queues._active[account]
        queues.finish(Outcome(account, 0, proposal.value, proposal.value))
        core.cancel(account, 0)  # the core may take the account's next proposal
    assert started == ["busy", "other", "busy", "other"]


async def test_a_write_to_an_account_a_peer_pushed_to_the_last_rounds_fails_alone() -> None:
    # The alarm failed the account's queue while the driver iterated over the queues:
    # "dictionary changed size during iteration" stopped the node, after every restart.
    from ledger.node.consensus import AccountQuarantined
    from ledger.paxos.ballot import MAX_ROUND

    store, sent = MemoryStore(AppliedSlots.TABLES), []
    driver = make_driver(store, sent)
    task = asyncio.create_task(driver.run())
    await driver.deliver(1, [Envelope(1, 0, Prepare("poisoned", 0, Ballot(MAX_ROUND, 1)))])
    with pytest.raises(AccountQuarantined, match="refusing to follow"):
        await driver.propose("poisoned", b"v", timeout_s=5)
    with pytest.raises(NoQuorum):  # another account: proposed normally (no peers answer)
        await driver.propose("healthy", b"v", timeout_s=0.5)
    assert not task.done()
    assert any(isinstance(e.message, Prepare) and e.message.account == "healthy"
               and e.message.ballot.round < 1_000_000 for e in sent)
    driver.stop()
    await task
