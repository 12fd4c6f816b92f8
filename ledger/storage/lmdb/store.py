"""`LmdbStore`: the `Store` protocol over one LMDB environment, put together from the parts.

It opens the parts in order (directory lock, environment, tables), owns the
lock, and gives the write side its public contract: staging, syncing, closing,
the node identity. The reads come from `LmdbReads`; the package docstring
lists every part.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import threading
from collections.abc import Iterable

import lmdb

from ledger.paxos.records import Write
from ledger.storage.base import (
    AppWrite,
    ChosenRepair,
    NodeIdentity,
    PeerRecord,
    check_app_tables,
    flush_now,
)
from ledger.storage.lmdb.directory import lock_directory, store_exists
from ledger.storage.lmdb.environment import open_environment, open_tables, table_count
from ledger.storage.lmdb.errors import storage_error
from ledger.storage.lmdb.reads import LmdbReads
from ledger.storage.lmdb.records import (
    META_COMMITS,
    META_IDENTITY,
    META_PEERS,
    Records,
    decode_identity,
    decode_peers,
    encode_identity,
    encode_peers,
)
from ledger.storage.lmdb.staging import StagedWrites
from ledger.storage.lmdb.writes import MetaWrite


class LmdbStore(LmdbReads):
    """A node's durable state in one LMDB environment. One thread only (the node's loop).

    `stage` applies writes to an open write transaction (reads see them); `sync`
    commits that transaction in one LMDB commit. See the package docstring for the layout.
    """

    exists = staticmethod(store_exists)

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        app_tables: Iterable[str] = (),
        map_size_bytes: int = 1 << 30,
        max_map_size_bytes: int = 1 << 40,
    ) -> None:
        if not 0 < map_size_bytes <= max_map_size_bytes:
            raise ValueError(
                f"need 0 < map_size_bytes <= max_map_size_bytes, got {map_size_bytes} "
                f"and {max_map_size_bytes}"
            )
        self._path = os.fspath(path)
        self._app_tables = check_app_tables(app_tables)
        self._lock_fd = lock_directory(self._path)
        try:
            env = open_environment(self._path, map_size_bytes, table_count(self._app_tables))
        except BaseException:
            os.close(self._lock_fd)
            raise
        try:
            self._records = Records(self._path, env.max_key_size())
            self._tables = open_tables(env, self._records, self._app_tables)
        except BaseException:
            env.close()
            os.close(self._lock_fd)
            raise
        self._writes = StagedWrites(env, self._tables, self._records, max_map_size_bytes)
        self._writes.commits = self._meta_u64(META_COMMITS)

    @property
    def path(self) -> str:
        """The store's directory."""
        return self._path

    @property
    def app_tables(self) -> tuple[str, ...]:
        """The application tables the store was opened with, sorted."""
        return self._app_tables

    @property
    def readers_lock(self) -> threading.Lock | contextlib.nullcontext[None]:
        """The lock readers on other threads hold for the length of a read.

        A GroupCommitStore sets its own lock here. Growing the map takes it, since
        the resize invalidates every transaction of the process.
        """
        return self._writes.readers_lock

    @readers_lock.setter
    def readers_lock(self, lock: threading.Lock | contextlib.nullcontext[None]) -> None:
        self._writes.readers_lock = lock

    def map_size(self) -> int:
        """The current LMDB map size in bytes (it grows by doubling as data is added)."""
        return self._writes.require_env().info()["map_size"]

    # Staging and commit

    def stage(self, writes: Iterable[Write | AppWrite | ChosenRepair]) -> None:
        """Apply `writes` so reads see them; durable at the next `sync`.

        A batch that breaks an invariant (`BrokenInvariant`, as MemoryStore raises),
        names an undeclared table (`UnknownTable`) or that no store could hold
        (ValueError) is refused whole: none of it is staged, and what was staged
        before stays staged.

        A batch that does not fit (`StorageFull`), or that LMDB fails to take for
        another reason (`StorageError`), raises too, but stays staged: the caller
        has already acted on these writes, so no later commit may leave them out.
        Until a `sync` manages to commit them, every `sync` (and `stage`) raises,
        and reads show the state staged before that batch (or raise, if even that
        cannot be rebuilt: a read never silently misses an earlier staged write).
        """
        self._writes.stage(list(writes))

    def flush_async(self) -> concurrent.futures.Future[None]:
        """Synchronously (wrap in a GroupCommitStore for a background writer)."""
        return flush_now(self.sync)

    def sync(self) -> None:
        """Commit everything staged in one LMDB commit. A no-op if nothing is staged.

        One commit is one durable write however many writes were staged: LMDB
        fsyncs the data pages, then writes and fsyncs the meta page that makes
        them current, so a crash at any point leaves the previous commit or this one.

        Raises `StorageFull` if the disk or the map (at `max_map_size_bytes`) is full,
        or `StorageError` if the write fails otherwise; the staged writes then stay
        staged, none of them is committed, and a later `sync` retries them all.
        """
        self._writes.sync()

    def close(self) -> None:
        """Sync, then close. Closing twice is harmless; the store is unusable afterwards.

        If the sync fails the environment is closed anyway (the process is going
        away) and the error is raised: what was staged is lost, as in a crash.
        """
        if self._writes.env is None:
            return
        try:
            self.sync()
        finally:
            self._shut()

    def abandon(self) -> None:
        """Close without committing what is staged, exactly as a crash would leave the disk.

        For tests and for shutting down after an error that makes the staged state
        suspect; the store is unusable afterwards.
        """
        if self._writes.env is not None:
            self._shut()

    def _shut(self) -> None:
        try:
            self._writes.close()
        finally:
            os.close(self._lock_fd)

    # The node identity: read and written here, committed at once

    def _meta_payload(self, key: bytes, what: str) -> bytes | None:
        txn = self._writes.begin_read()
        try:
            raw = txn.get(key, db=self._tables.meta)
        finally:
            self._writes.end_read(txn)
        return None if raw is None else self._records.checked(key, raw, what)

    def identity(self) -> NodeIdentity | None:
        payload = self._meta_payload(META_IDENTITY, "the node identity")
        return None if payload is None else decode_identity(payload)

    def set_identity(self, identity: NodeIdentity) -> None:
        """Record the identity and commit at once (with anything else staged)."""
        self._writes.stage([MetaWrite(META_IDENTITY, encode_identity(identity))])
        self.sync()

    def peer_records(self) -> dict[str, PeerRecord]:
        payload = self._meta_payload(META_PEERS, "the peer records")
        return {} if payload is None else decode_peers(payload)

    def set_peer_records(self, records: dict[str, PeerRecord], wait: bool = True) -> None:
        """Record what this node holds about its peers; commit at once."""
        self._writes.stage([MetaWrite(META_PEERS, encode_peers(records))])
        self.sync()

    # A copy for backups

    def copy_to(self, path: str) -> None:
        """Write a compacted copy of the committed state (nothing staged) into directory
        `path`, which must exist and be empty.

        LMDB copies through a read transaction, so commits may go on meanwhile. Call it
        on the thread that stages and syncs: growing the map, which only that thread
        does, would pull the pages out from under a copy on another thread.
        """
        env = self._writes.require_env()
        try:
            env.copy(path, compact=True)
        except lmdb.Error as exc:
            raise storage_error(path, exc, f"copying the store at {self._path}") from exc
