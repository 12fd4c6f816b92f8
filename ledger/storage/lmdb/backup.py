"""Backups: a consistent copy of a node's store, laid out as a data directory.

A backup is a compacted copy of the LMDB environment taken through one read
transaction, so it holds one committed state, exactly what a crash at that moment
would have left, even while the node keeps writing. Its identity is then marked
`recovery_required`: a copy is older than the node's own promises and votes, so it
must go through `ledger recover` before `ledger serve` accepts it.

The output directory is built as a hidden sibling and renamed into place at the
end, so a failed backup never leaves a half-written directory behind; an output
that exists and is not empty is refused before anything is written.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from typing import Protocol, runtime_checkable

from ledger.storage.base import NodeIdentity, StorageError
from ledger.storage.lmdb.directory import DATA_FILE, LOCK_FILE, store_exists
from ledger.storage.lmdb.store import LmdbStore

LMDB_LOCK_FILE = "lock.mdb"  # LMDB's reader table; recreated whenever an environment opens


class BackupError(StorageError):
    """A backup could not be made; nothing was left at the output. The message says why."""


@runtime_checkable
class CopyableStore(Protocol):
    """A store that can copy its committed state into an empty directory (LMDB can)."""

    def copy_to(self, path: str) -> None: ...


@dataclasses.dataclass(frozen=True, slots=True)
class Backup:
    """A finished backup: the directory, the identity it carries (marked), its size."""

    directory: str
    identity: NodeIdentity
    size_bytes: int

    @property
    def data_path(self) -> str:
        """The backup's LMDB data file, the one file a backup is made of."""
        return os.path.join(self.directory, DATA_FILE)


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def backup_note(node_id: str, taken_at: datetime.datetime, earlier: str | None) -> str:
    """Why a restored backup must be recovered first: the identity's `recovery_required`.

    No final full stop: `ledger serve` adds its own hint after it.
    """
    note = (f"this data directory was restored from a backup of node {node_id} taken at "
            f"{taken_at.astimezone(datetime.UTC):%Y-%m-%d %H:%M:%S} UTC and must run "
            f"`ledger recover` before serving")
    # The source may have needed recovery already; the reason still holds for the copy.
    return note if earlier is None else f"{note} (before the backup: {earlier})"


# ------------------------------------------------------------------ making a copy


def copy_live_store(store: CopyableStore, directory: str,
                    now: Callable[[], datetime.datetime] = utc_now) -> Backup:
    """Copy a running node's store into `directory` (existing, empty) and mark the copy.

    Blocks for as long as the copy takes: run it off the event loop.
    """
    taken_at = now()  # the copy's read transaction starts right after this
    store.copy_to(directory)
    return mark_as_backup(directory, taken_at)


def mark_as_backup(directory: str, taken_at: datetime.datetime) -> Backup:
    """Set `recovery_required` in the identity of the copy in `directory`; returns it."""
    with _opened_copy(directory) as copy:
        identity = copy.identity()
        if identity is None:
            raise BackupError(f"the copy in {directory} holds no node identity: the source "
                              f"is not the data directory of a node that has served")
        marked = dataclasses.replace(identity, recovery_required=backup_note(
            identity.node_id, taken_at, identity.recovery_required))
        copy.set_identity(marked)
    return _described(directory, marked)


def read_backup(directory: str) -> Backup:
    """The backup in `directory`, checked to be one: a store whose identity is marked."""
    with _opened_copy(directory) as copy:
        identity = copy.identity()
    if identity is None or identity.recovery_required is None:
        raise BackupError(f"{directory} does not hold a backup: its identity is "
                          f"{'missing' if identity is None else 'not marked for recovery'}")
    return _described(directory, identity)


@contextlib.contextmanager
def _opened_copy(directory: str) -> Iterator[LmdbStore]:
    """The store in a copy's directory; afterwards the lock files opening it made are
    removed again (LMDB recreates them at need), so a backup is its data file alone."""
    if not store_exists(directory):
        # Never let LmdbStore create a new, empty store where a copy was expected.
        raise BackupError(f"no store in {directory}: the copy is missing")
    store = LmdbStore(directory)
    try:
        yield store
    finally:
        store.close()
        for name in (LMDB_LOCK_FILE, LOCK_FILE):
            with contextlib.suppress(FileNotFoundError):
                os.remove(os.path.join(directory, name))


def _described(directory: str, identity: NodeIdentity) -> Backup:
    return Backup(directory, identity, os.path.getsize(os.path.join(directory, DATA_FILE)))


# -------------------------------------------------------------- into a directory


def backup_stopped_node(data_dir: str, out_dir: str,
                        now: Callable[[], datetime.datetime] = utc_now) -> Backup:
    """Back up the data directory of a node that is not running into `out_dir`."""
    if not store_exists(data_dir):
        raise BackupError(f"{data_dir} is not a node's data directory (it holds no "
                          f"{DATA_FILE}): give the --data-dir the node was served with")
    if _inside(out_dir, data_dir):
        raise BackupError(f"the output {out_dir} is inside the data directory {data_dir}: "
                          f"put the backup elsewhere")
    with staged_output(out_dir) as scratch:
        source = _open_stopped(data_dir)
        try:
            taken_at = now()
            source.copy_to(scratch)
        finally:
            source.close()
        backup = mark_as_backup(scratch, taken_at)
    return dataclasses.replace(backup, directory=out_dir)


def receive_backup(out_dir: str, download: Callable[[str], str]) -> Backup:
    """A backup made by a running node, into `out_dir`.

    `download(path)` writes the node's marked copy of its data file at `path` and
    returns the node id the node gave; the result is checked to be that node's backup.
    """
    with staged_output(out_dir) as scratch:
        node_id = download(os.path.join(scratch, DATA_FILE))
        backup = read_backup(scratch)
        if backup.identity.node_id != node_id:
            raise BackupError(f"the node said it is {node_id!r}, but the copy it sent "
                              f"belongs to node {backup.identity.node_id!r}")
    return dataclasses.replace(backup, directory=out_dir)


def _open_stopped(data_dir: str) -> LmdbStore:
    try:
        return LmdbStore(data_dir)
    except StorageError as error:
        if "in use" in str(error):  # the directory lock: a node process holds it
            raise BackupError(
                f"the data directory {data_dir} is in use by a running node: back it up "
                f"through the node instead (`ledger backup --server HOST:PORT`), or stop "
                f"the node first") from error
        raise


def _inside(path: str, directory: str) -> bool:
    path, directory = os.path.realpath(path), os.path.realpath(directory)
    return os.path.commonpath([path, directory]) == directory


@contextlib.contextmanager
def staged_output(out_dir: str) -> Iterator[str]:
    """A scratch directory beside `out_dir` to build the backup in; renamed to `out_dir`
    when the block succeeds, removed when it fails (or is interrupted).

    Refuses, before writing anything, an `out_dir` that is a file or a non-empty directory.
    """
    _check_output(out_dir)
    parent, name = os.path.split(os.path.abspath(out_dir))
    try:
        scratch = tempfile.mkdtemp(prefix=f".{name}.", suffix=".partial", dir=parent)
    except OSError as error:
        raise BackupError(f"cannot write in {parent}: {error.strerror}") from error
    try:
        yield scratch
        _put_in_place(scratch, out_dir)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise


def _check_output(out_dir: str) -> None:
    if not os.path.lexists(out_dir):
        parent = os.path.dirname(os.path.abspath(out_dir))
        if not os.path.isdir(parent):
            raise BackupError(f"{parent} does not exist: create it first, or give another "
                              f"--out")
        return
    if not os.path.isdir(out_dir) or os.path.islink(out_dir):
        raise BackupError(f"{out_dir} exists and is not a plain directory: give a new --out")
    if os.listdir(out_dir):
        raise BackupError(f"{out_dir} exists and is not empty: give a new or empty "
                          f"directory as --out (nothing was written)")


def _put_in_place(scratch: str, out_dir: str) -> None:
    """Make the backup durable, then visible at `out_dir` in one rename."""
    _fsync(os.path.join(scratch, DATA_FILE), os.O_RDONLY)
    _fsync(scratch, os.O_RDONLY | os.O_DIRECTORY)
    try:
        # Replaces an empty directory; fails if `out_dir` gained entries meanwhile.
        os.rename(scratch, out_dir)
    except OSError as error:
        raise BackupError(f"cannot put the backup in place at {out_dir}: {error.strerror} "
                          f"(nothing was written there)") from error
    _fsync(os.path.dirname(os.path.abspath(out_dir)), os.O_RDONLY | os.O_DIRECTORY)


def _fsync(path: str, flags: int) -> None:
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
