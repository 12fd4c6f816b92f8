"""What only the LMDB store does: files, map growth, full disks, checksums, group commit."""

from __future__ import annotations

import random
import struct
import subprocess
import sys
import threading
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lmdb
import pytest

from ledger.paxos.ballot import NULL_BALLOT, Ballot
from ledger.paxos.records import (
    AcceptWrite,
    AccountRecord,
    ChosenWrite,
    PromiseWrite,
    RoundWrite,
)
from ledger.storage.base import (
    AppWrite,
    BrokenInvariant,
    Corruption,
    NodeIdentity,
    StorageError,
    StorageFull,
    StoreFailed,
)
from ledger.storage.group_commit import GroupCommitStore
from ledger.storage.lmdb import FORMAT_VERSION, LmdbStore, store_exists
from ledger.storage.lmdb import errors as lmdb_errors
from ledger.storage.memory import MemoryStore
from tests.support.faults import FaultyStore
from tests.support.storage import APP_TABLES, StagedWrite

B1, B2 = Ballot(1, 0), Ballot(2, 1)
KIB = 1 << 10
MIB = 1 << 20


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "db"


@pytest.fixture
def opened(path: Path) -> Iterator[list[LmdbStore]]:
    """Stores a test opened, closed at teardown (a failing test must not leak the lock)."""
    stores: list[LmdbStore] = []
    yield stores
    for store in stores:
        store.abandon()


def open_store(path: Path, opened: list[LmdbStore], **kwargs: Any) -> LmdbStore:
    store = LmdbStore(path, **{"app_tables": APP_TABLES, **kwargs})
    opened.append(store)
    return store


def slot_key(account: str, slot: int) -> bytes:
    return account.encode() + b"\x00" + struct.pack(">Q", slot)


def last_txnid(store: LmdbStore) -> int:
    return store._writes.env.info()["last_txnid"]  # type: ignore[union-attr]


# Files and directories


def test_a_missing_directory_is_created_and_then_holds_a_store(
    tmp_path: Path, opened: list[LmdbStore]
) -> None:
    path = tmp_path / "nested" / "node1" / "db"
    assert not store_exists(path)
    assert not LmdbStore.exists(path)
    store = open_store(path, opened)
    assert path.is_dir()
    assert store_exists(path)
    assert store.path == str(path)
    assert not store_exists(tmp_path)


def test_a_path_that_is_a_file_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    path = tmp_path / "a-file"
    path.write_text("not a store")
    with pytest.raises(StorageError, match="is a file, not a directory"):
        LmdbStore(path, app_tables=APP_TABLES)
    assert path.read_text() == "not a store"


def test_a_store_is_opened_by_one_owner_at_a_time(path: Path, opened: list[LmdbStore]) -> None:
    store = open_store(path, opened)
    with pytest.raises(StorageError, match="in use by another process"):
        LmdbStore(path, app_tables=APP_TABLES)
    store.close()
    open_store(path, opened).close()  # the lock went with the close


def test_the_environment_commits_durably(path: Path, opened: list[LmdbStore]) -> None:
    store = open_store(path, opened)
    flags = store._writes.env.flags()  # type: ignore[union-attr]
    assert flags["sync"] and flags["metasync"]
    assert not flags["writemap"] and not flags["map_async"]


@pytest.mark.parametrize(("version", "written_by"), [(FORMAT_VERSION - 1, "an older version"),
                                                    (FORMAT_VERSION + 1, "a newer version")])
def test_a_store_of_another_format_version_is_refused_and_left_alone(
    path: Path, version: int, written_by: str
) -> None:
    LmdbStore(path, app_tables=APP_TABLES).close()
    payload = struct.pack(">Q", version)
    sealed = struct.pack(">I", zlib.crc32(payload, zlib.crc32(b"format"))) + payload
    with lmdb.open(str(path), max_dbs=16) as env, env.begin(write=True) as txn:
        txn.put(b"format", sealed, db=env.open_db(b"meta", txn=txn))
    with pytest.raises(StorageError, match=f"format version {version}, written by {written_by}"):
        LmdbStore(path, app_tables=("added",))
    with lmdb.open(str(path), max_dbs=16) as env, env.begin() as txn:
        assert txn.get(b"format", db=env.open_db(b"meta", txn=txn)) == sealed
        assert txn.get(b"app.added") is None  # no table was added to it


def test_an_lmdb_environment_this_program_did_not_write_is_refused(path: Path) -> None:
    with lmdb.open(str(path), max_dbs=4) as env, env.begin(write=True) as txn:
        txn.put(b"someone", b"else's data")
    with pytest.raises(StorageError, match="without a format version"):
        LmdbStore(path, app_tables=APP_TABLES)
    with lmdb.open(str(path), max_dbs=4) as env, env.begin() as txn:
        assert txn.get(b"someone") == b"else's data"  # and left as it was

def test_closing_twice_is_harmless_and_a_closed_store_refuses_work(path: Path) -> None:
    store = LmdbStore(path, app_tables=APP_TABLES)
    store.close()
    store.close()
    with pytest.raises(StorageError, match="closed"):
        store.reserved_round()
    with pytest.raises(StorageError, match="closed"):
        store.stage([RoundWrite(1)])


def test_accounts_that_cannot_be_keys_are_refused(path: Path, opened: list[LmdbStore]) -> None:
    store = open_store(path, opened)
    with pytest.raises(ValueError, match="NUL"):
        store.stage([PromiseWrite("a\x00b", B1)])
    with pytest.raises(ValueError, match="bytes"):
        store.account_record("x" * 600)
    store.stage([PromiseWrite("x" * 400, B1)])
    assert store.account_record("x" * 400).promised == B1


# Identity


def test_the_identity_round_trips_across_a_reopen(path: Path, opened: list[LmdbStore]) -> None:
    identity = NodeIdentity("n1", (("n1", "[::1]:7001"), ("n2", "host-b:7002"), ("n3", "é:1")))
    store = open_store(path, opened)
    assert store.identity() is None
    store.set_identity(identity)
    store.abandon()  # "at once": no sync or close needed
    assert open_store(path, opened).identity() == identity


def test_set_identity_commits_what_is_staged_with_it(path: Path, opened: list[LmdbStore]) -> None:
    store = open_store(path, opened)
    store.stage([RoundWrite(7)])
    store.set_identity(NodeIdentity("n1", (("n1", "a:1"),)))
    store.abandon()
    assert open_store(path, opened).reserved_round() == 7


# Group commit


class SlowSyncs(MemoryStore):
    """A base store whose `sync` waits until released: a flush stays in flight meanwhile."""

    def __init__(self) -> None:
        super().__init__(APP_TABLES)
        self.release = threading.Event()

    def sync(self) -> None:
        self.release.wait(timeout=30)
        super().sync()


def test_group_commit_runs_one_flush_at_a_time() -> None:
    base = SlowSyncs()
    store = GroupCommitStore(base)
    store.stage([RoundWrite(1)])
    first = store.flush_async()
    store.stage([RoundWrite(2)])
    with pytest.raises(BrokenInvariant, match="one flush at a time"):
        store.flush_async()
    base.release.set()
    first.result(timeout=30)
    store.sync()  # the refused flush took nothing with it
    assert base.synced.reserved_round() == 2
    store.close()


def test_one_sync_is_one_commit_however_many_stages(path: Path, opened: list[LmdbStore]) -> None:
    store = open_store(path, opened)
    before = last_txnid(store)
    for slot in range(50):
        store.stage([AcceptWrite("a", slot, B1, b"v"), RoundWrite(slot)])
    assert last_txnid(store) == before  # nothing committed while staging
    store.sync()
    assert last_txnid(store) == before + 1
    store.sync()  # nothing staged: no commit
    assert last_txnid(store) == before + 1
    assert len(store.account_record("a").accepted) == 50


def test_a_refused_write_leaves_none_of_its_batch_staged(
    path: Path, opened: list[LmdbStore]
) -> None:
    store = open_store(path, opened)
    store.stage([PromiseWrite("a", B2)])
    with pytest.raises(BrokenInvariant):
        store.stage([RoundWrite(3), AcceptWrite("a", 0, B2, b"ok"), PromiseWrite("a", B1)])
    assert store.reserved_round() == 0
    assert store.account_record("a") == AccountRecord(B2, -1, ())
    store.close()
    store = open_store(path, opened)
    assert store.account_record("a") == AccountRecord(B2, -1, ())



def test_a_refused_first_batch_commits_nothing(path: Path, opened: list[LmdbStore]) -> None:
    store = open_store(path, opened)
    before = last_txnid(store)
    with pytest.raises(BrokenInvariant):
        store.stage([ChosenWrite("a", 1, b"not next")])
    store.sync()
    assert last_txnid(store) == before
    assert store.account_summary("a").chosen_through == -1

# Map growth and full maps


def big_votes(account: str, count: int, size: int, start: int = 0) -> list[StagedWrite]:
    return [AcceptWrite(account, start + i, B1, bytes([i % 251]) * size) for i in range(count)]


def test_the_map_grows_transparently(path: Path, opened: list[LmdbStore]) -> None:
    store = open_store(path, opened, map_size_bytes=64 * KIB)
    for batch in range(8):  # 8 syncs of 64 x 4 KiB = 2 MiB
        store.stage(big_votes("a", 64, 4 * KIB, start=64 * batch))
        store.sync()
    # One batch bigger than the map at the time, values and chosen prefix included.
    chosen = [ChosenWrite("c", i, b"c%d" % i) for i in range(500)]
    store.stage([*big_votes("b", 300, 4 * KIB), *chosen])
    store.stage([AppWrite("history", b"h%04d" % i, b"x" * 1000) for i in range(1000)])
    store.sync()
    assert store.map_size() >= 4 * MIB
    store.close()
    store = open_store(path, opened, map_size_bytes=64 * KIB)
    votes = store.account_record("a").accepted
    assert [vote.slot for vote in votes] == list(range(512))
    assert all(vote.value == bytes([vote.slot % 64 % 251]) * 4 * KIB for vote in votes)
    assert len(store.account_record("b").accepted) == 300
    assert list(store.chosen_values("c", 0, 1000)) == [b"c%d" % i for i in range(500)]
    assert len(store.app_range("history", b"", b"\xff", 5000)) == 1000


def test_a_map_at_its_maximum_raises_storage_full_and_loses_nothing(
    path: Path, opened: list[LmdbStore]
) -> None:
    store = open_store(path, opened, map_size_bytes=64 * KIB, max_map_size_bytes=512 * KIB)
    store.stage(big_votes("a", 20, 4 * KIB))
    store.sync()
    store.stage([ChosenWrite("a", 0, b"v0")])  # staged, not synced
    with pytest.raises(StorageFull) as failure:
        store.stage(big_votes("b", 200, 4 * KIB))
    message = str(failure.value)
    assert "max_map_size_bytes=524288" in message and "raise the maximum map size" in message
    assert str(path) in message
    # Reads still work, and show what was staged before the batch that did not fit.
    assert store.account_record("a").chosen_through == 0
    assert len(store.account_record("a").accepted) == 19
    assert store.account_record("b").accepted == ()
    # That batch stays staged: nothing staged after it commits without it.
    with pytest.raises(StorageFull, match="the next sync retries them all"):
        store.stage([RoundWrite(3)])
    for _ in range(2):
        with pytest.raises(StorageFull, match="max_map_size_bytes"):
            store.sync()
    assert store.account_record("a").chosen_through == 0
    with pytest.raises(StorageFull):
        store.close()  # closes all the same: what was staged is lost, as in a crash
    store = open_store(path, opened, map_size_bytes=64 * KIB, max_map_size_bytes=512 * KIB)
    record = store.account_record("a")
    assert (record.chosen_through, len(record.accepted)) == (-1, 20)
    assert store.account_record("b").accepted == ()
    assert store.reserved_round() == 0


class FailingPuts:
    """An LMDB environment whose write transactions' puts fail with `error` until healed."""

    def __init__(self, env: lmdb.Environment, error: Exception) -> None:
        self.env = env
        self.error = error
        self.healed = False

    def begin(self, *args: Any, **kwargs: Any) -> Any:
        txn = self.env.begin(*args, **kwargs)
        return FailingPut(txn, self) if kwargs.get("write") else txn

    def __getattr__(self, name: str) -> Any:
        return getattr(self.env, name)


class FailingPut:
    """A write transaction of `FailingPuts`."""

    def __init__(self, txn: lmdb.Transaction[bytes], env: FailingPuts) -> None:
        self.txn = txn
        self.env = env

    def put(self, *args: Any, **kwargs: Any) -> bool:
        if not self.env.healed:
            raise self.env.error
        return self.txn.put(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.txn, name)


def test_a_batch_that_fails_to_stage_stays_staged_until_a_sync_commits_it(
    path: Path, opened: list[LmdbStore]
) -> None:
    store = open_store(path, opened)
    store.stage([RoundWrite(1)])
    store.sync()
    real_env = store._writes.env
    assert real_env is not None
    failing = FailingPuts(real_env, lmdb.DiskError("mdb_put: No space left on device"))
    store._writes.env = failing  # type: ignore[assignment]
    with pytest.raises(StorageFull, match="free disk space"):
        store.stage([PromiseWrite("a", B1), AcceptWrite("a", 0, B1, b"v")])
    assert store.account_record("a").promised == NULL_BALLOT  # not visible yet
    with pytest.raises(StorageFull, match="next sync retries them all"):
        store.stage([ChosenWrite("a", 0, b"v")])
    with pytest.raises(StorageFull):
        store.sync()
    failing.healed = True  # space was freed
    store.sync()
    assert store.account_record("a") == AccountRecord(B1, 0, ())
    store.stage([RoundWrite(2)])
    store.sync()
    store.abandon()
    store = open_store(path, opened)
    assert store.account_record("a") == AccountRecord(B1, 0, ())
    assert list(store.chosen_values("a", 0, 5)) == [b"v"]
    assert store.reserved_round() == 2


class FailingCommits:
    """An LMDB environment whose write transactions fail to commit with `error` until healed."""

    def __init__(self, env: lmdb.Environment, error: Exception, times: int = 1000) -> None:
        self.env = env
        self.error = error
        self.failures = 0
        self.healed = False
        self.times = times

    def begin(self, *args: Any, **kwargs: Any) -> Any:
        txn = self.env.begin(*args, **kwargs)
        return FailingCommit(txn, self) if kwargs.get("write") else txn

    def __getattr__(self, name: str) -> Any:
        return getattr(self.env, name)


class FailingCommit:
    """A write transaction of `FailingCommits`; reads and puts go to the real one."""

    def __init__(self, txn: lmdb.Transaction[bytes], env: FailingCommits) -> None:
        self.txn = txn
        self.env = env

    def commit(self) -> None:
        if self.env.healed or self.env.failures >= self.env.times:
            self.txn.commit()
            return
        self.txn.abort()  # as mdb_txn_commit does when it fails
        self.env.failures += 1
        raise self.env.error

    def __getattr__(self, name: str) -> Any:
        return getattr(self.txn, name)


def test_a_map_full_at_commit_grows_the_map_and_commits(
    path: Path, opened: list[LmdbStore]
) -> None:
    store = open_store(path, opened, map_size_bytes=64 * KIB)
    real_env = store._writes.env
    assert real_env is not None
    failing = FailingCommits(real_env, lmdb.MapFullError("mdb_txn_commit"), times=2)
    store._writes.env = failing  # type: ignore[assignment]
    store.stage([RoundWrite(2)])
    store.sync()
    assert failing.failures == 2
    assert store.map_size() == 256 * KIB
    store.abandon()
    assert open_store(path, opened).reserved_round() == 2


def test_a_map_full_at_commit_at_the_maximum_raises_storage_full(
    path: Path, opened: list[LmdbStore]
) -> None:
    store = open_store(path, opened, map_size_bytes=64 * KIB, max_map_size_bytes=128 * KIB)
    real_env = store._writes.env
    assert real_env is not None
    failing = FailingCommits(real_env, lmdb.MapFullError("mdb_txn_commit"))
    store._writes.env = failing  # type: ignore[assignment]
    store.stage([RoundWrite(2)])
    with pytest.raises(StorageFull, match="max_map_size_bytes=131072"):
        store.sync()
    assert failing.failures == 2  # once at 64 KiB, once at the 128 KiB maximum
    assert store.reserved_round() == 2
    failing.healed = True
    store.sync()
    store.abandon()
    assert open_store(path, opened).reserved_round() == 2



def test_reads_raise_rather_than_miss_staged_writes_that_cannot_be_rebuilt(
    path: Path, opened: list[LmdbStore]
) -> None:
    store = open_store(path, opened)
    real_env = store._writes.env
    assert real_env is not None
    failing = FailingPuts(real_env, lmdb.DiskError("mdb_put: No space left on device"))
    failing.healed = True
    store._writes.env = failing  # type: ignore[assignment]
    store.stage([RoundWrite(1)])
    failing.healed = False  # the disk fills up: even RoundWrite(1) cannot be replayed now
    with pytest.raises(StorageFull):
        store.stage([RoundWrite(2)])
    with pytest.raises(StorageFull):
        store.reserved_round()
    with pytest.raises(StorageFull):
        store.stage([RoundWrite(3)])
    failing.healed = True
    assert store.reserved_round() == 1  # readable again; 2 and 3 wait for the sync
    store.sync()
    assert store.reserved_round() == 3
    store.abandon()
    assert open_store(path, opened).reserved_round() == 3

@pytest.mark.parametrize("error", [
    lmdb.DiskError("mdb_txn_commit: No space left on device"),
    lmdb.Error("mdb_txn_commit: Disk quota exceeded"),
])
def test_a_full_disk_at_commit_raises_storage_full_and_a_later_sync_retries(
    path: Path, opened: list[LmdbStore], error: Exception
) -> None:
    store = open_store(path, opened)
    store.stage([RoundWrite(1)])
    store.sync()
    real_env = store._writes.env
    assert real_env is not None
    failing = FailingCommits(real_env, error)
    store._writes.env = failing  # type: ignore[assignment]
    store.stage([RoundWrite(2), AcceptWrite("a", 0, B1, b"v")])
    for _ in range(2):
        with pytest.raises(StorageFull, match=r"is full .* free disk space, then retry"):
            store.sync()
        assert store.reserved_round() == 2  # still staged and visible
        assert len(store.account_record("a").accepted) == 1
    assert failing.failures == 2
    failing.healed = True  # space was freed
    store.sync()
    store.abandon()
    store = open_store(path, opened)
    assert store.reserved_round() == 2
    assert len(store.account_record("a").accepted) == 1


def test_an_io_error_with_a_nearly_full_disk_is_reported_as_full(
    path: Path, opened: list[LmdbStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    store = open_store(path, opened)
    real_env = store._writes.env
    assert real_env is not None
    failing = FailingCommits(real_env, lmdb.Error("mdb_txn_commit: Input/output error"))
    store._writes.env = failing  # type: ignore[assignment]
    store.stage([RoundWrite(2)])
    with pytest.raises(StorageError) as plenty:
        store.sync()
    assert not isinstance(plenty.value, StorageFull)
    assert "Input/output error" in str(plenty.value)
    monkeypatch.setattr(lmdb_errors, "free_disk_bytes", lambda path: 4096)
    with pytest.raises(StorageFull, match="free: 4096 bytes"):
        store.sync()
    failing.healed = True
    store.sync()
    store.abandon()
    assert open_store(path, opened).reserved_round() == 2


_SHORT_WRITE_CHILD = """
import resource, signal, sys
from ledger.paxos.ballot import Ballot
from ledger.paxos.records import AcceptWrite, RoundWrite
from ledger.storage.base import StorageError
from ledger.storage.lmdb import LmdbStore

signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails instead
store = LmdbStore(sys.argv[1], app_tables=("applied", "history", "requests"))
store.stage([RoundWrite(1)])
store.sync()
soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
resource.setrlimit(resource.RLIMIT_FSIZE, (256 * 1024, hard))
store.stage([AcceptWrite("a", i, Ballot(1, 0), b"x" * 4096) for i in range(200)])
store.stage([RoundWrite(2)])
try:
    store.sync()
except StorageError as exc:
    print("failed:", exc)
else:
    raise SystemExit("the commit did not fail")
assert store.reserved_round() == 2, "the staged writes must still be visible"
resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
store.sync()
store.close()
print("retried")
"""


def test_a_commit_that_fails_writing_the_file_leaves_the_last_commit_and_the_staged_writes(
    path: Path,
) -> None:
    """A real write failure: the file size limit cuts LMDB's page writes short (EIO)."""
    child = subprocess.run(
        [sys.executable, "-c", _SHORT_WRITE_CHILD, str(path)],
        capture_output=True, text=True, timeout=60,
    )
    assert child.returncode == 0, child.stdout + child.stderr
    assert "failed:" in child.stdout and "retried" in child.stdout
    store = LmdbStore(path, app_tables=APP_TABLES)
    try:
        assert store.reserved_round() == 2
        assert len(store.account_record("a").accepted) == 200
    finally:
        store.close()


# Checksums


def corrupt(path: Path, table: bytes, key: bytes) -> None:
    """Flip one bit of the last byte of a stored record, behind the store's back."""
    with lmdb.open(str(path), max_dbs=16) as env, env.begin(write=True) as txn:
        db = env.open_db(table, txn=txn)
        raw = txn.get(key, db=db)
        assert raw is not None
        txn.put(key, raw[:-1] + bytes([raw[-1] ^ 0x04]), db=db)


def test_a_corrupt_record_is_detected_and_named(path: Path, opened: list[LmdbStore]) -> None:
    store = LmdbStore(path, app_tables=APP_TABLES)
    store.stage([
        PromiseWrite("alice", B1),
        AcceptWrite("alice", 1, B1, b"deposit 5"),
        ChosenWrite("alice", 0, b"opening 100"),
        ChosenWrite("bob", 0, b"opening 7"),
        RoundWrite(4),
        AppWrite("applied", b"alice", b"105"),
        AcceptWrite("carol", 0, B1, b"v"),
        PromiseWrite("dave", B2),
    ])
    store.close()
    corrupt(path, b"vote", slot_key("alice", 1))
    corrupt(path, b"chosen", slot_key("alice", 0))
    corrupt(path, b"tail", b"bob\x00")
    corrupt(path, b"meta", b"reserved_round")
    corrupt(path, b"app.applied", b"alice")
    corrupt(path, b"promise", b"dave\x00")
    store = open_store(path, opened)
    with pytest.raises(Corruption, match=r"vote of account 'alice' at slot 1 .*checksum"):
        store.account_record("alice")
    with pytest.raises(Corruption, match=r"chosen value of account 'alice' at slot 0"):
        store.chosen_values("alice", 0, 10)
    with pytest.raises(Corruption, match=r"chosen tail of account 'bob'"):
        store.account_summary("bob")
    with pytest.raises(Corruption, match=r"chosen tail of account 'bob'"):
        store.account_tails("", 10)
    with pytest.raises(Corruption, match="reserved round"):
        store.reserved_round()
    with pytest.raises(Corruption, match=r"applied entry b'alice'"):
        store.app_get("applied", b"alice")
    with pytest.raises(Corruption, match=r"promise of account 'dave'"):
        store.account_record("dave")
    # Intact records still read.
    assert list(store.chosen_values("bob", 1, 10)) == []
    assert store.account_record("carol").accepted[0].value == b"v"
    assert list(store.accounts_with_votes()) == ["alice", "carol"]
    # A write that builds on a corrupt record is never committed: it stays staged
    # and every later stage and sync raises.
    with pytest.raises(Corruption, match=r"promise of account 'dave'"):
        store.stage([PromiseWrite("dave", Ballot(9, 0))])
    with pytest.raises(Corruption, match=r"promise of account 'dave'.*retries them all"):
        store.stage([RoundWrite(8)])
    with pytest.raises(Corruption, match=r"promise of account 'dave'"):
        store.sync()
    assert store.account_record("carol").accepted[0].value == b"v"


def test_a_record_moved_to_another_key_fails_its_checksum(
    path: Path, opened: list[LmdbStore]
) -> None:
    store = LmdbStore(path, app_tables=APP_TABLES)
    store.stage([AcceptWrite("a", 0, B1, b"zero"), AcceptWrite("a", 1, B1, b"one")])
    store.close()
    with lmdb.open(str(path), max_dbs=16) as env, env.begin(write=True) as txn:
        votes = env.open_db(b"vote", txn=txn)
        raw = txn.get(slot_key("a", 0), db=votes)
        assert raw is not None
        txn.put(slot_key("a", 1), raw, db=votes)
    with pytest.raises(Corruption, match="slot 1"):
        open_store(path, opened).account_record("a")


# The LMDB store behaves like the in-memory reference, history by history


ACCOUNTS = ["", "a", "a b", "ab", "b", "é"]
APP_KEYS = [b"k", b"k1", b"k\x00", b"l"]


def random_batch(rng: random.Random, reference: MemoryStore) -> list[StagedWrite]:
    """A few writes valid one after another, already staged in the reference."""
    batch = []
    for _ in range(rng.randint(1, 6)):
        write = random_write(rng, reference)
        reference.stage([write])
        batch.append(write)
    return batch


def random_write(rng: random.Random, reference: MemoryStore) -> StagedWrite:
    """A write valid in the reference's current state (so both stores accept it)."""
    account = rng.choice(ACCOUNTS)
    record = reference.account_record(account)
    promised = record.promised
    roll = rng.random()
    if roll < 0.15:
        return PromiseWrite(account, Ballot(promised.round + rng.randint(1, 2), rng.randint(0, 2)))
    if roll < 0.5:
        if promised != NULL_BALLOT and rng.random() < 0.6:
            ballot = promised
        else:
            ballot = Ballot(promised.round + 1, rng.randint(0, 2))
        slot = record.chosen_through + rng.randint(1, 4)
        return AcceptWrite(account, slot, ballot, rng.randbytes(rng.randint(0, 40)))
    if roll < 0.75:
        return ChosenWrite(account, record.chosen_through + 1, rng.randbytes(rng.randint(0, 40)))
    if roll < 0.8:
        return RoundWrite(reference.reserved_round() + rng.randint(0, 1000))
    value = None if rng.random() < 0.3 else rng.randbytes(rng.randint(0, 20))
    return AppWrite(rng.choice(APP_TABLES), rng.choice(APP_KEYS), value)


def observe(store: Any) -> tuple[object, ...]:
    return (
        store.reserved_round(),
        [store.account_record(a) for a in ACCOUNTS],
        [list(store.chosen_values(a, f, n)) for a in ACCOUNTS for f, n in ((0, 99), (1, 2))],
        [list(store.account_tails(after, n)) for after in ("", "a", "ab") for n in (1, 99)],
        [list(store.account_summaries(after, 99)) for after in ("", "a b")],
        [store.account_summary(a) for a in ACCOUNTS],
        list(store.accounts_with_votes()),
        [list(store.app_range(t, start, b"\xff", 99)) for t in APP_TABLES
         for start in (b"", b"k\x00")],
        [store.app_get(t, k) for t in APP_TABLES for k in APP_KEYS],
    )


@pytest.mark.parametrize("seed", range(12))
def test_random_histories_read_the_same_as_the_in_memory_store(
    seed: int, path: Path, opened: list[LmdbStore]
) -> None:
    rng = random.Random(seed)
    reference = MemoryStore(APP_TABLES)
    store = open_store(path, opened, map_size_bytes=64 * KIB)
    for _ in range(120):
        roll = rng.random()
        if roll < 0.75:
            store.stage(random_batch(rng, reference))
        elif roll < 0.9:
            reference.sync()
            store.sync()
        elif roll < 0.95:
            reference.crash()
            store.abandon()
            store = open_store(path, opened, map_size_bytes=64 * KIB)
        else:
            reference.close()
            store.close()
            store = open_store(path, opened, map_size_bytes=64 * KIB)
        assert observe(store) == observe(reference)



@pytest.mark.parametrize("seed", range(8))
def test_group_commit_reads_the_same_as_the_in_memory_store_while_flushing(
    seed: int, path: Path, opened: list[LmdbStore]
) -> None:
    """Background flushes interleave with staging and reads; every read matches."""
    rng = random.Random(1000 + seed)
    reference = MemoryStore(APP_TABLES)
    base = open_store(path, opened, map_size_bytes=64 * KIB)
    store = GroupCommitStore(base)
    in_flight = None
    for _ in range(150):
        roll = rng.random()
        if roll < 0.7:
            store.stage(random_batch(rng, reference))
        elif roll < 0.85 and (in_flight is None or in_flight.done()):
            in_flight = store.flush_async()  # reads below race with the writer thread
        elif roll < 0.9:
            if in_flight is not None:
                in_flight.result()
            in_flight = None
            reference.sync()
            store.sync()
            assert observe(base) == observe(reference)  # the base caught up
        assert observe(store) == observe(reference)
    store.close()


def test_after_an_unforeseen_commit_failure_group_commit_commits_nothing_more(
    path: Path,
) -> None:
    faulty = FaultyStore(LmdbStore(path, app_tables=APP_TABLES), "stage", 2,
                         RuntimeError("injected"))
    store = GroupCommitStore(faulty)  # type: ignore[arg-type]
    store.stage([PromiseWrite("a", B1)])
    store.flush_async().result()  # the first batch is durable
    store.stage([PromiseWrite("b", B1)])
    with pytest.raises(StoreFailed, match="injected"):
        store.flush_async().result()  # the second is lost
    store.stage([PromiseWrite("c", B1)])
    with pytest.raises(StoreFailed):
        store.flush_async()  # nothing later may be committed without it
    with pytest.raises(StoreFailed):
        store.close()  # closes without committing
    disk = LmdbStore(path, app_tables=APP_TABLES)
    try:
        promised = {a: disk.account_record(a).promised for a in "abc"}
        assert promised == {"a": B1, "b": NULL_BALLOT, "c": NULL_BALLOT}
    finally:
        disk.close()


def test_after_a_full_disk_group_commit_retries_the_staged_writes(path: Path) -> None:
    full_once = FaultyStore(LmdbStore(path, app_tables=APP_TABLES), "sync", 2,
                            StorageFull("disk full (test)"))
    store = GroupCommitStore(full_once)  # type: ignore[arg-type]
    store.stage([PromiseWrite("a", B1)])
    store.flush_async().result()
    store.stage([PromiseWrite("b", B1)])
    with pytest.raises(StorageFull):
        store.flush_async().result()
    store.sync()  # the disk has room again: the writes were kept, and now commit
    store.close()
    disk = LmdbStore(path, app_tables=APP_TABLES)
    try:
        assert disk.account_record("b").promised == B1
    finally:
        disk.close()
