"""`ledger backup`: a consistent copy of a node's state, from a running node (--server) or
a stopped node's data directory (--data-dir), marked to need `ledger recover`."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import pathlib
import tempfile
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import cast

import grpc
import pytest

from ledger.bank.state_machine import LedgerStateMachine
from ledger.client import LedgerClient
from ledger.client.admin import node_counters
from ledger.node.cluster import ClusterConfig
from ledger.node.driver import NodeDriver
from ledger.server.admin_servicer import BACKUP_CHUNK_BYTES, AdminServicer
from ledger.storage.base import AppWrite, Incarnation, NodeIdentity
from ledger.storage.group_commit import GroupCommitStore
from ledger.storage.lmdb import LmdbStore
from ledger.storage.lmdb.backup import read_backup
from ledger.tools.localcluster import ProcessCluster
from ledger.v1 import replica_pb2 as pb
from ledger.v1 import replica_pb2_grpc as pb_grpc
from tests.support.cli import invoke_ledger
from tests.support.in_process import Servers
from tests.support.nodes import client, log_length
from tests.support.polling import eventually

WRITES_BEFORE = 20  # deposits acknowledged before the backup starts
WRITES_AFTER = 5  # and after it has finished: the node was writing all along
WAIT_S = 60.0


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


class Depositor:
    """Deposits into an account through one node, one after another, until stopped. Counts
    the acknowledged deposits, so a test waits for a number of them, never for a time."""

    def __init__(self, cluster: ProcessCluster, index: int, account: str) -> None:
        self._cluster = cluster
        self._index = index
        self._account = account
        self._changed = threading.Condition()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.acknowledged = 0
        self.error: BaseException | None = None

    def _run(self) -> None:
        try:
            with client(self._cluster, self._index) as bank:
                while not self._stopping.is_set():
                    bank.deposit(self._account, 1)
                    with self._changed:
                        self.acknowledged += 1
                        self._changed.notify_all()
        except BaseException as error:  # reported by wait_for
            with self._changed:
                self.error = error
                self._changed.notify_all()

    def wait_for(self, count: int) -> int:
        """Until `count` deposits are acknowledged; returns how many are."""
        with self._changed:
            reached = self._changed.wait_for(
                lambda: self.acknowledged >= count or self.error is not None, WAIT_S)
            if self.error is not None:
                raise AssertionError(f"a deposit failed: {self.error!r}") from self.error
            assert reached, f"not {count} deposits within {WAIT_S}s ({self.acknowledged})"
            return self.acknowledged

    def __enter__(self) -> Depositor:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping.set()
        self._thread.join(WAIT_S)


def admin_log(cluster: ProcessCluster, index: int, account: str, through: int) -> list[bytes]:
    address = cluster.addresses[index]
    """The node's chosen values of the account, slots 0..through (Admin.Log, paged)."""
    values: list[bytes] = []
    with cluster.security.channel(address) as channel:
        stub = pb_grpc.AdminStub(channel)
        while len(values) <= through:
            reply = stub.Log(pb.LogRequest(account=account, from_slot=len(values),
                                           limit=through + 1 - len(values)), timeout=10)
            assert reply.values, f"{address} holds {account} only through {reply.chosen_through}"
            values.extend(reply.values)
    return values


def flushes(cluster: ProcessCluster, index: int) -> int:
    address = cluster.addresses[index]
    counters = node_counters(address, 10, cluster.security)
    assert counters is not None, f"{address} does not answer"
    return counters["syncs"]


def durably_chosen_through(cluster: ProcessCluster, index: int, account: str,
                           at_least: int) -> int:
    """How far the node holds the account as chosen (`at_least` that far), once that much
    is surely on its disk.

    Chosen values are flushed lazily: after the read, wait for two more flushes to end
    (the one in flight may have begun before the read; the next takes all staged by then).
    """

    def far_enough() -> int | None:
        through = log_length(cluster, index, account) - 1
        return through if through >= at_least else None

    reached = eventually(far_enough, what=f"n{index + 1} holds {account} through {at_least}")
    done = flushes(cluster, index)
    eventually(lambda: flushes(cluster, index) >= done + 2, what="two more flushes")
    return reached


@contextlib.contextmanager
def opened(directory: pathlib.Path) -> Iterator[LmdbStore]:
    store = LmdbStore(directory)
    try:
        yield store
    finally:
        store.close()


def chosen(store: LmdbStore, account: str) -> list[bytes]:
    through = store.account_summary(account).chosen_through
    return list(store.chosen_values(account, 0, through + 1))


def assert_marked(identity: NodeIdentity | None, node_id: str, cluster: ProcessCluster) -> None:
    assert identity is not None
    assert identity.node_id == node_id
    assert identity.cluster == tuple((n.node_id, n.address) for n in cluster.nodes)
    assert identity.recovery_required is not None
    assert f"restored from a backup of node {node_id} taken at " in identity.recovery_required
    assert "UTC and must run `ledger recover` before serving" in identity.recovery_required


def listing(directory: pathlib.Path) -> dict[str, bytes]:
    """Every file under `directory` with its content (what 'nothing changed' compares)."""
    return {str(path.relative_to(directory)): path.read_bytes() if path.is_file() else b""
            for path in sorted(directory.rglob("*"))}


def sha256(path: pathlib.Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ------------------------------------------------------------------ real nodes


@pytest.mark.xdist_group("processes")
def test_a_running_node_is_backed_up_while_it_takes_writes(
        shared_cluster: ProcessCluster, tmp_path: pathlib.Path) -> None:
    node = shared_cluster.nodes[0]
    account = unique("bk-live")
    with LedgerClient(shared_cluster.addresses, security=shared_cluster.security) as bank:
        bank.open_account(account, 1_000)
    out = tmp_path / "backup"
    with Depositor(shared_cluster, 0, account) as writer:
        writer.wait_for(WRITES_BEFORE)
        durable = durably_chosen_through(shared_cluster, 0, account, WRITES_BEFORE)
        result = invoke_ledger(["backup", "--server", node.address, "--out", str(out)],
                               env=shared_cluster.client_env)
        writer.wait_for(writer.acknowledged + WRITES_AFTER)
    assert result.exit_code == 0, result.output

    assert sorted(os.listdir(out)) == ["data.mdb"]
    with opened(out) as copy:
        assert_marked(copy.identity(), node.node_id, shared_cluster)
        in_backup = chosen(copy, account)
    # Everything the node had on disk when the backup began, and at every slot the value
    # the live node holds: a copy taken mid-write is one committed state, not a torn one.
    assert len(in_backup) - 1 >= durable >= WRITES_BEFORE
    assert in_backup == admin_log(shared_cluster, 0, account, len(in_backup) - 1)

    assert "received " in result.output
    assert f"a backup of node {node.node_id} in {out}" in result.output
    assert (f"to restore: stop the node, put {out} in place of its data directory DATA_DIR, "
            f"run `ledger recover --node-id {node.node_id} --data-dir DATA_DIR --cluster "
            f"{shared_cluster.cluster_flag} --tls-dir TLS_DIR`, then `ledger serve`"
            ) in result.output


@pytest.mark.xdist_group("processes")
def test_a_stopped_nodes_data_directory_is_backed_up_and_left_as_it_was(
        own_cluster: ProcessCluster, tmp_path: pathlib.Path) -> None:
    stopped = own_cluster.nodes[2]
    account = unique("bk-stopped")
    with LedgerClient(own_cluster.addresses, security=own_cluster.security) as bank:
        bank.open_account(account, 500)
        for _ in range(10):
            bank.deposit(account, 7)

    # While the node runs, its directory is locked: the command says to use --server.
    refused = tmp_path / "refused"
    before = sorted(os.listdir(tmp_path))
    result = invoke_ledger(["backup", "--data-dir", str(stopped.data_dir), "--out", str(refused)])
    assert result.exit_code == 1
    assert "in use by a running node" in result.output and "--server" in result.output
    assert sorted(os.listdir(tmp_path)) == before

    eventually(lambda: log_length(own_cluster, 2, account) == log_length(own_cluster, 0,
                                                                         account),
               what="the node to stop holds the whole log")
    assert own_cluster.terminate(2) == 0
    source_bytes = sha256(stopped.data_dir / "data.mdb")

    out = tmp_path / "backup"
    result = invoke_ledger(["backup", "--data-dir", str(stopped.data_dir), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert (f"--data-dir {stopped.data_dir} --cluster {own_cluster.cluster_flag} --tls-dir "
            "TLS_DIR`") in result.output

    assert sha256(stopped.data_dir / "data.mdb") == source_bytes
    with opened(stopped.data_dir) as source:
        source_identity = source.identity()
        source_accounts = list(source.account_summaries("", 1_000))
        source_log = chosen(source, account)
    with opened(out) as copy:
        assert_marked(copy.identity(), stopped.node_id, own_cluster)
        assert list(copy.account_summaries("", 1_000)) == source_accounts
        in_backup = chosen(copy, account)
        identity = copy.identity()
    assert source_identity is not None and source_identity.recovery_required is None
    assert identity is not None
    assert identity.incarnation == source_identity.incarnation
    assert in_backup == source_log and len(in_backup) >= 11  # the opening, 10 deposits
    assert in_backup == admin_log(own_cluster, 0, account, len(in_backup) - 1)


# ------------------------------------------------------- refusals, no nodes harmed


@pytest.fixture
def stopped_store(tmp_path: pathlib.Path) -> pathlib.Path:
    """A data directory as a node that served and stopped leaves it."""
    directory = tmp_path / "node"
    with opened(directory) as store:
        store.set_identity(NodeIdentity("n1", (("n1", "127.0.0.1:7001"),)))
    return directory


@pytest.mark.xdist_group("processes")
@pytest.mark.parametrize("source", ["--server", "--data-dir"])
def test_an_output_that_exists_and_is_not_empty_is_refused_with_nothing_changed(
        source: str, shared_cluster: ProcessCluster, stopped_store: pathlib.Path,
        tmp_path: pathlib.Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "precious.txt").write_text("keep me")
    before, out_before = listing(tmp_path), listing(out)
    given = shared_cluster.addresses[0] if source == "--server" else str(stopped_store)
    result = invoke_ledger(["backup", source, given, "--out", str(out)],
                           env=shared_cluster.client_env)
    assert result.exit_code == 1
    assert f"{out} exists and is not empty" in result.output
    assert listing(out) == out_before and listing(tmp_path) == before


def test_an_output_that_is_a_file_is_refused(stopped_store: pathlib.Path,
                                             tmp_path: pathlib.Path) -> None:
    out = tmp_path / "out"
    out.write_text("keep me")
    result = invoke_ledger(["backup", "--data-dir", str(stopped_store), "--out", str(out)])
    assert result.exit_code == 1 and "not a plain directory" in result.output
    assert out.read_text() == "keep me"


def test_an_empty_output_directory_is_used(stopped_store: pathlib.Path,
                                           tmp_path: pathlib.Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    result = invoke_ledger(["backup", "--data-dir", str(stopped_store), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert sorted(os.listdir(out)) == ["data.mdb"]
    assert read_backup(str(out)).identity.node_id == "n1"


def test_a_failed_backup_leaves_nothing_behind(nowhere: str, tmp_path: pathlib.Path) -> None:
    result = invoke_ledger(["backup", "--server", nowhere, "--out", str(tmp_path / "out"),
                            "--timeout", "5", "--insecure"])
    assert result.exit_code == 1
    assert f"{nowhere}: UNAVAILABLE" in result.output
    assert os.listdir(tmp_path) == []  # neither the output nor the scratch beside it


@pytest.mark.parametrize("sources", [
    ["--server", "127.0.0.1:7001", "--data-dir", "somewhere"],
    [],
])
def test_exactly_one_of_server_and_data_dir(sources: list[str], tmp_path: pathlib.Path) -> None:
    result = invoke_ledger(["backup", *sources, "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "give exactly one of --server HOST:PORT" in result.output
    assert os.listdir(tmp_path) == []


# ----------------------------------- the node's temporary copy, served in process


class Client:
    """The client's end of a Backup call, as the servicer sees it: it never aborts."""

    async def abort(self, code: grpc.StatusCode, details: str) -> None:
        raise AssertionError(f"aborted: {code} {details}")


def backup_call(servicer: AdminServicer) -> AsyncIterator[pb.BackupChunk]:
    return servicer.Backup(pb.BackupRequest(), cast(grpc.aio.ServicerContext, Client()))


@pytest.fixture
def scratch_root(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> pathlib.Path:
    """Where the servicer's temporary copies go (its temporary directory)."""
    root = tmp_path / "tmp"
    root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    return root


@pytest.fixture
def servicer(tmp_path: pathlib.Path) -> Iterator[AdminServicer]:
    """An Admin servicer over a node's store holding about 3 MiB (several chunks)."""
    store = GroupCommitStore(LmdbStore(tmp_path / "node", app_tables=("rows",)))
    store.set_identity(NodeIdentity("n1", (("n1", "127.0.0.1:7001"),)))
    store.stage([AppWrite("rows", index.to_bytes(4, "big"), os.urandom(1024))
                 for index in range(3 * 1024)])
    store.sync()
    cluster = ClusterConfig.parse("n1=127.0.0.1:7001")
    yield AdminServicer("n1", cluster, store, cast(NodeDriver, None), lambda account: None)
    store.close()


async def until_empty(directory: pathlib.Path) -> None:
    """Poll (the removal runs on a thread of its own) with a deadline, never a fixed wait."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT_S
    while os.listdir(directory):
        assert loop.time() < deadline, f"left behind: {os.listdir(directory)}"
        await asyncio.sleep(0.05)


async def test_the_nodes_temporary_copy_is_streamed_in_chunks_then_removed(
        servicer: AdminServicer, scratch_root: pathlib.Path, tmp_path: pathlib.Path) -> None:
    chunks = [chunk async for chunk in backup_call(servicer)]
    await until_empty(scratch_root)

    first, *rest = chunks
    assert first.node_id == "n1" and rest and not any(c.node_id for c in rest)
    assert all(len(c.data) == BACKUP_CHUNK_BYTES for c in chunks[:-1])
    data = b"".join(c.data for c in chunks)
    assert len(data) == first.total_bytes
    received = tmp_path / "received"
    received.mkdir()
    (received / "data.mdb").write_bytes(data)
    assert read_backup(str(received)).identity.recovery_required is not None


async def test_a_client_that_goes_away_mid_stream_leaves_no_copy_on_the_node(
        servers: Servers, scratch_root: pathlib.Path, tmp_path: pathlib.Path) -> None:
    # Far more data than gRPC buffers between the two ends: after the first chunk the
    # node is still streaming, its copy still in its temporary directory.
    store = GroupCommitStore(LmdbStore(tmp_path / "n1",
                                       app_tables=(*LedgerStateMachine.TABLES, "ballast")))
    store.set_identity(NodeIdentity("n1", servers.cluster.as_pairs(), Incarnation.new(0)))
    for batch in range(32):
        store.stage([AppWrite("ballast", (batch << 10 | row).to_bytes(4, "big"),
                              os.urandom(1024)) for row in range(1024)])
    store.sync()
    await servers.start(0, store=store)
    async with grpc.aio.insecure_channel(servers.address(0)) as channel:
        call = pb_grpc.AdminStub(channel).Backup(pb.BackupRequest(), timeout=WAIT_S)
        first = await call.read()
        assert isinstance(first, pb.BackupChunk) and first.total_bytes > 32 << 20
        assert len(os.listdir(scratch_root)) == 1  # the copy being streamed
        call.cancel()
    await until_empty(scratch_root)


async def test_a_node_whose_store_cannot_be_copied_says_so(servers: Servers) -> None:
    await servers.start(0)  # an in-memory store
    async with grpc.aio.insecure_channel(servers.address(0)) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            async for _ in pb_grpc.AdminStub(channel).Backup(pb.BackupRequest(), timeout=10):
                pass
    assert refused.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert "only an LMDB store can" in (refused.value.details() or "")


async def test_a_backup_request_that_is_not_one_is_refused_before_the_method(
        servers: Servers) -> None:
    await servers.start(0)
    async with grpc.aio.insecure_channel(servers.address(0)) as channel:
        backup = channel.unary_stream("/ledger.v1.Admin/Backup")
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            async for _ in backup(b"\xff\xff\xff", timeout=10):
                pass
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "not a valid ledger.v1.BackupRequest" in (refused.value.details() or "")
