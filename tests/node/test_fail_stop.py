"""A store that fails the way nobody foresaw stops the node, and nothing it acknowledged
is lost: every Promise and Accepted that left is durable on disk."""

from __future__ import annotations

import asyncio
import pathlib
import random
import struct
import tempfile

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.bank.state_machine import LedgerStateMachine
from ledger.node import peer_codec
from ledger.node.driver import NodeDriver, NodeFailed
from ledger.paxos import Accept, Accepted, Ballot, Envelope, PaxosConfig, Prepare, Promise
from ledger.storage.group_commit import GroupCommitStore
from ledger.storage.lmdb import LmdbStore
from ledger.v1 import replica_pb2 as pb
from ledger.v1 import replica_pb2_grpc as pb_grpc
from tests.support.faults import FaultyStore
from tests.support.hostile import TEST_INCARNATION
from tests.support.in_process import Servers
from tests.support.state_machines import AppliedSlots

ROUNDS = 12
ANSWER_TIMEOUT_S = 2.0

ERRORS = {
    "runtime": RuntimeError("injected"),
    "struct": struct.error("argument out of range"),  # the unencodable round of issue 12
    "value": ValueError("injected"),
    "os": OSError(5, "Input/output error"),
    "key": KeyError("injected"),
}


async def exercise(path: pathlib.Path, method: str, after: int, error: BaseException
                   ) -> tuple[list[Envelope], FaultyStore, BaseException | None]:
    """Drive a node with Prepares and Accepts from a peer; what it answered, and how it ended."""
    faulty = FaultyStore(LmdbStore(path, app_tables=AppliedSlots.TABLES), method, after, error)
    store = GroupCommitStore(faulty)  # type: ignore[arg-type]
    driver = NodeDriver(0, PaxosConfig(cluster_size=3), store, lambda peer, sent: None,
                        random.Random(0), AppliedSlots(store))
    task = asyncio.create_task(driver.run())
    calls: list[asyncio.Future[list[Envelope]]] = []
    for round_ in range(ROUNDS):
        if task.done():
            break
        # An account per round: a later promise must not stand in for a lost one.
        account, ballot = f"a{round_}", Ballot(round_ + 1, 1)
        call = driver.deliver(1, [Envelope(1, 0, Prepare(account, 0, ballot)),
                                  Envelope(1, 0, Accept(account, 0, ballot, b"v%d" % round_))])
        calls.append(call)
        await asyncio.wait({call, task}, timeout=ANSWER_TIMEOUT_S,
                           return_when=asyncio.FIRST_COMPLETED)
    driver.stop()
    outcome: BaseException | None = None
    try:
        await asyncio.wait_for(task, timeout=30)
    except NodeFailed as failed:
        outcome = failed
    # Every answer that ever left, however late (a held call released by a later flush).
    answers = [envelope for call in calls if call.done() and not call.cancelled()
               for envelope in call.result()]
    store.abandon()  # what a crash leaves: only what was committed
    return answers, faulty, outcome


def assert_every_answer_is_durable(path: pathlib.Path, answers: list[Envelope]) -> None:
    disk = LmdbStore(path, app_tables=AppliedSlots.TABLES)
    try:
        for envelope in answers:
            message = envelope.message
            if isinstance(message, Promise):
                promised = disk.account_record(message.account).promised
                assert promised >= message.ballot, f"promise {message} left but is not durable"
            elif isinstance(message, Accepted):
                record = disk.account_record(message.account)
                votes = {vote.slot: vote.ballot for vote in record.accepted}
                assert record.chosen_through >= message.slot or (
                    votes.get(message.slot, Ballot(0, -1)) >= message.ballot
                ), f"vote {message} left but is not durable"
    finally:
        disk.close()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(method=st.sampled_from(["stage", "sync"]), after=st.integers(1, 14),
       error=st.sampled_from(sorted(ERRORS)))
def test_an_unforeseen_store_failure_stops_the_node_and_loses_nothing_acknowledged(
    method: str, after: int, error: str
) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = pathlib.Path(directory) / "db"
        answers, faulty, outcome = asyncio.run(exercise(path, method, after, ERRORS[error]))
        if faulty.failed.is_set():
            assert isinstance(outcome, NodeFailed), "the node must stop"
            assert "restart the node" in str(outcome)
        else:
            assert outcome is None
            assert sum(isinstance(e.message, Promise) for e in answers) == ROUNDS
        assert_every_answer_is_durable(path, answers)


async def test_a_server_whose_store_fails_stops_and_says_how_to_recover(
    tmp_path: pathlib.Path,
) -> None:
    servers = Servers(3)
    faulty = FaultyStore(LmdbStore(tmp_path / "db", app_tables=LedgerStateMachine.TABLES),
                         # The 1st stage records the calling peer, the 2nd is the promise.
                         "stage", 3, RuntimeError("injected"))
    node = await servers.start(0, GroupCommitStore(faulty))  # type: ignore[arg-type]
    prepare = peer_codec.to_pb(Prepare("a", 0, Ballot(3, 1)))
    async with grpc.aio.insecure_channel(servers.address(0)) as channel:
        step = pb_grpc.ReplicaStub(channel).Step(pb.StepRequest(
            cluster_fingerprint=servers.cluster.fingerprint, source_node_id="n2",
            messages=[prepare], source_incarnation=TEST_INCARNATION), timeout=5)
        with pytest.raises(NodeFailed, match="restart the node from its data directory"):
            await asyncio.wait_for(node.wait(), timeout=30)
        with pytest.raises(grpc.aio.AioRpcError):  # the promise was never answered
            await step
    await servers.stop()
    disk = LmdbStore(tmp_path / "db", app_tables=LedgerStateMachine.TABLES)
    assert disk.account_record("a").promised == Ballot(0, -1)
    disk.close()
