"""Staging and group commit: the open write transaction, and keeping it through failures.

All writes staged since the last `sync` live in one open LMDB write
transaction, which every read on the writing thread goes through, so reads see
staged writes. `sync` commits it: one commit (one durable write), however many
writes. The writes are also kept in a Python list so that the transaction can be
rebuilt when LMDB needs it thrown away (the map is full and must grow, or a
commit failed on a full disk): the staged state then survives, visible, and a
later `sync` retries it.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Sequence

import lmdb

from ledger.storage.base import StorageError, StorageFull
from ledger.storage.lmdb.environment import Tables
from ledger.storage.lmdb.errors import storage_error
from ledger.storage.lmdb.read_transactions import ReadTransactions
from ledger.storage.lmdb.records import META_COMMITS, U64, Records, seal
from ledger.storage.lmdb.writes import AnyWrite, apply_writes

log = logging.getLogger(__name__)


class StagedWrites(ReadTransactions):
    """The writes staged since the last commit, held in one open write transaction.

    Owns the environment (and closes it), since growing the map and committing
    both act on it. One writing thread; reads on any thread get their
    transaction from `begin_read` (see `ReadTransactions`), which a commit
    (`generation`) or a map resize (`map_generation`) makes them renew.
    """

    def __init__(
        self, env: lmdb.Environment, tables: Tables, records: Records, max_map_size: int
    ) -> None:
        super().__init__()
        self.env: lmdb.Environment | None = env  # None once closed
        self.txn: lmdb.Transaction[bytes] | None = None
        self.writer_thread: int | None = None  # the thread that stages and syncs
        # Held by readers on other threads for the length of a read; see _grow.
        self.readers_lock: threading.Lock | contextlib.nullcontext[None] = (
            contextlib.nullcontext())
        # What is staged since the last commit, in order. The open transaction
        # holds exactly `staged`, and can be rebuilt from it. `_unfitted` follows
        # it: writes staged from the first batch that LMDB could not take on (a
        # full map or disk). They are kept so that no later commit can leave them
        # out, and the next `sync` tries to fit them again.
        self.staged: list[AnyWrite] = []
        self._unfitted: list[AnyWrite] = []
        self._unfit_reason: StorageError | None = None
        self._tables = tables
        self._records = records
        self._path = records.path
        self._max_map_size = max_map_size
        self.commits = 0  # commits made so far (LmdbStore reads the stored count at open)

    def stage(self, batch: list[AnyWrite]) -> None:
        """Apply `batch` to the open transaction; see `LmdbStore.stage` for the failure modes."""
        self.writer_thread = threading.get_ident()
        if not batch:
            return
        if self._unfit_reason is not None:
            self._unfitted.extend(batch)
            reason = self._unfit_reason
            raise type(reason)(
                f"staged, behind writes the store could not take yet ({reason}); the next "
                f"sync retries them all"
            )
        self.require_env()
        txn = self.txn
        if txn is None:
            try:
                txn = self.write_txn()
            except StorageError as error:  # the earlier staged writes cannot be rebuilt
                self._keep_unfitted(batch, error)
                raise
        try:
            apply_writes(txn, batch, self._records, self._tables)
        except lmdb.MapFullError:
            self._drop_txn()
            try:
                self.txn = self._rebuild(batch, grow_first=True)
            except StorageError as error:
                self._keep_unfitted(batch, error)
                raise
            except BaseException:
                self._restore()
                raise
        except (lmdb.Error, OSError) as exc:
            self._drop_txn()
            failure = storage_error(self._path, exc, "staging writes")
            self._keep_unfitted(batch, failure)
            raise failure from exc
        except StorageError as error:  # Corruption of a record the batch builds on
            self._drop_txn()
            self._keep_unfitted(batch, error)
            raise
        except BaseException:  # a refused batch: none of it stays staged
            self._drop_txn()
            self._restore()
            raise
        self.staged.extend(batch)

    def _keep_unfitted(self, batch: list[AnyWrite], reason: StorageError) -> None:
        """Keep a batch LMDB could not take as staged, and the earlier ones readable."""
        self._unfitted.extend(batch)
        self._unfit_reason = reason
        self._restore()

    def sync(self) -> None:
        """Commit everything staged in one LMDB commit; see `LmdbStore.sync`."""
        if not self.staged and not self._unfitted:
            self._drop_txn()  # an empty transaction left by a refused batch
            return
        if self._unfitted:
            self._drop_txn()
            try:
                self.txn = self._rebuild(self._unfitted)
            except StorageError as error:
                self._unfit_reason = error
                self._restore()
                raise
            except BaseException:
                self._restore()
                raise
            self.staged.extend(self._unfitted)
            self._unfitted.clear()
            self._unfit_reason = None
        while True:
            txn = self.write_txn()
            self.txn = None
            try:
                # The commit count rises with every commit, in the commit itself: peers
                # remember the count they saw, so an older copy of the directory shows.
                key = META_COMMITS
                txn.put(key, seal(key, U64.pack(self.commits + 1)), db=self._tables.meta)
                txn.commit()
            except lmdb.MapFullError:
                # The commit itself may need pages (LMDB's free list), or the commit
                # count did. A failed commit aborted the transaction; a failed put did
                # not. Grow and rebuild it.
                txn.abort()
                try:
                    self._grow()
                except StorageFull:
                    self._restore()
                    raise
                continue
            except (lmdb.Error, OSError) as exc:
                # LMDB writes the meta page last: a failed commit leaves the last
                # committed state as it was, and the staged writes are still listed.
                failure = storage_error(self._path, exc, "committing staged writes")
                self._restore()
                raise failure from exc
            break
        self.staged.clear()
        self.generation += 1
        self.commits += 1

    def close(self) -> None:
        """Drop what is staged (uncommitted, as a crash would) and close the environment."""
        self._drop_txn()
        self.staged.clear()
        self._unfitted.clear()
        self._unfit_reason = None
        env, self.env = self.env, None
        if env is not None:
            env.close()

    def require_env(self) -> lmdb.Environment:
        env = self.env
        if env is None:
            raise StorageError(f"the store at {self._path} is closed")
        return env

    def write_txn(self) -> lmdb.Transaction[bytes]:
        """The open write transaction, opening it (and replaying staged writes) if needed."""
        self.writer_thread = threading.get_ident()
        txn = self.txn
        if txn is None:
            env = self.require_env()
            if self.staged:
                txn = self._rebuild([])
            else:
                try:
                    txn = env.begin(write=True)
                except lmdb.Error as exc:
                    raise storage_error(self._path, exc, "starting a write transaction") from exc
            self.txn = txn
        return txn

    def _drop_txn(self) -> None:
        txn, self.txn = self.txn, None
        if txn is not None:
            txn.abort()

    def _rebuild(
        self, extra: Sequence[AnyWrite], *, grow_first: bool = False
    ) -> lmdb.Transaction[bytes]:
        """A new write transaction holding the staged writes plus `extra`, growing as needed."""
        env = self.require_env()
        if grow_first:
            self._grow()
        while True:
            try:
                txn = env.begin(write=True)
            except lmdb.Error as exc:
                raise storage_error(self._path, exc, "starting a write transaction") from exc
            try:
                apply_writes(txn, self.staged, self._records, self._tables)
                apply_writes(txn, extra, self._records, self._tables)
            except lmdb.MapFullError:
                txn.abort()
                self._grow()
                continue
            except (lmdb.Error, OSError) as exc:
                txn.abort()
                raise storage_error(self._path, exc, "staging writes") from exc
            except BaseException:
                txn.abort()
                raise
            return txn

    def _restore(self) -> None:
        """After a failure, reopen the transaction holding what was staged, if possible.

        If even that fails the transaction stays closed; `staged` still lists the
        writes, and the next read, stage or sync rebuilds it (or raises again).
        """
        if not self.staged:
            return
        try:
            self.txn = self._rebuild([])
        except Exception as exc:
            log.warning("could not restore the staged writes of %s yet: %s", self._path, exc)

    def _grow(self) -> None:
        """Double the map, up to the maximum map size. No transaction may be open."""
        env = self.require_env()
        current = env.info()["map_size"]
        if current >= self._max_map_size:
            raise StorageFull(
                f"the LMDB map of the store at {self._path} is full at {current} bytes, its "
                f"configured maximum (max_map_size_bytes={self._max_map_size}): raise the "
                f"maximum map size (and make sure the disk has room); nothing staged was lost"
            )
        new = min(current * 2, self._max_map_size)
        try:
            # Growing the map invalidates every open transaction of the process: readers
            # on other threads (see GroupCommitStore) must be held off meanwhile.
            with self.readers_lock:
                env.set_mapsize(new)
                self.map_generation += 1  # every thread's cached read txn is now invalid
        except lmdb.Error as exc:
            raise storage_error(self._path, exc, f"growing the map to {new} bytes") from exc
        log.info("grew the LMDB map of %s from %d to %d bytes", self._path, current, new)
