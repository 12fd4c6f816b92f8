"""The durable store: the `Store` protocol over LMDB, with group commit.

One LMDB environment (a directory) per node. Its named databases:

- ``meta``: format version, reserved round, node identity.
- ``promise``: account -> the ballot promised for every slot of the account.
- ``vote``: (account, slot) -> (ballot, value), the acceptor's undecided votes.
- ``chosen``: (account, slot) -> value, the chosen prefix of each account.
- ``tail``: account -> (chosen_through, chained digest of the chosen values).
- ``app.<name>`` for each application table the opener declares: opaque keys and
  values for the layer above.

Keys sort by (account, slot) so an account's votes or chosen values are one
range scan: the account's UTF-8 bytes, a NUL, then the slot as 8 bytes big
endian. Account-only keys (``promise``, ``tail``) carry the same NUL, so every
table orders accounts the way Python orders the strings, and the empty account
is a valid (non-empty) LMDB key.

Every stored value is ``crc32(key + payload)`` (4 bytes, big endian) followed by
the payload. Paxos Made Live found disks that return bad data silently; a node
that acts on a corrupt vote or promise can break agreement for the whole
cluster, so every read verifies the checksum and raises `Corruption` naming the
record instead. The key is part of the checksum so that a record written under
the wrong key is caught too.

Staging and group commit: all writes staged since the last `sync` live in one
open LMDB write transaction, which every read goes through, so reads see staged
writes. `sync` commits it: one commit (one durable write), however many writes.
The writes are also kept in a Python list so that the transaction can be rebuilt
when LMDB needs it thrown away (the map is full and must grow, or a commit
failed on a full disk): the staged state then survives, visible, and a later
`sync` retries it.

A full disk rarely says so: a page write cut short by it comes back from LMDB
as EIO. An I/O error while the filesystem is nearly full is therefore reported
as `StorageFull` too, so the operator is told what to fix.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import errno
import fcntl
import json
import logging
import os
import struct
import threading
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

import lmdb

from ledger.paxos.ballot import NULL_BALLOT, Ballot
from ledger.paxos.messages import AcceptedEntry, AccountTail
from ledger.paxos.records import (
    AcceptWrite,
    AccountRecord,
    ChosenWrite,
    PromiseWrite,
    RoundWrite,
    Write,
)
from ledger.storage.base import (
    EMPTY_DIGEST,
    AccountSummary,
    AppWrite,
    Corruption,
    NodeIdentity,
    StorageError,
    StorageFull,
    UnknownTable,
    chain_digest,
    check_app_tables,
    flush_now,
)

__all__ = ["FORMAT_VERSION", "LmdbStore", "store_exists"]

log = logging.getLogger(__name__)

#: Bumped when the on-disk layout changes; a store of another version is refused, not misread.
#: 2: the bank's records have a schema of their own (no public API type is stored).
FORMAT_VERSION: Final = 2

_DATA_FILE = "data.mdb"  # what LMDB creates in the directory (subdir=True)
_LOCK_FILE = "ledger.lock"  # our own exclusive lock; LMDB's lock.mdb allows many processes

_META = b"meta"
_PROMISE = b"promise"
_VOTE = b"vote"
_CHOSEN = b"chosen"
_TAIL = b"tail"
_CORE_DB_NAMES: Final = (_META, _PROMISE, _VOTE, _CHOSEN, _TAIL)

_META_FORMAT = b"format"
_META_ROUND = b"reserved_round"
_META_IDENTITY = b"identity"

_CRC: Final = struct.Struct(">I")
_U64: Final = struct.Struct(">Q")
_BALLOT: Final = struct.Struct(">Qi")  # round, node_index
_TAIL_BODY: Final = struct.Struct(">Q16s")  # chosen_through, digest
_CRC_SIZE: Final = _CRC.size
_SLOT_SIZE: Final = _U64.size

#: An I/O error with less free space than this on the store's filesystem is
#: reported as a full disk: LMDB turns a short write (the usual symptom of a disk
#: filling up mid-commit) into EIO, not ENOSPC.
_LOW_DISK_BYTES: Final = 64 << 20
_FULL_ERRNOS: Final = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
_FULL_SYMPTOMS: Final = ("No space left", "quota exceeded", "File too large")


@dataclass(frozen=True, slots=True)
class _MetaWrite:
    """A store-internal write to ``meta``, staged like the others so a rebuild replays it."""

    key: bytes
    value: bytes


_AnyWrite = Write | AppWrite | _MetaWrite


def store_exists(path: str | os.PathLike[str]) -> bool:
    """Whether `path` is a directory that already holds an LMDB store (without opening it)."""
    return os.path.isfile(os.path.join(os.fspath(path), _DATA_FILE))


def format_refusal(path: str, version: int) -> str:
    """Why a store of another on-disk format is not opened, and what to do about it."""
    if version < FORMAT_VERSION:
        return (f"the store at {path} has on-disk format version {version}, written by an "
                f"older version of the ledger; this version reads format {FORMAT_VERSION} only "
                f"and cannot convert it (nothing was changed): run the version that wrote it")
    return (f"the store at {path} has on-disk format version {version}, written by a newer "
            f"version of the ledger; this version reads format {FORMAT_VERSION} only (nothing "
            f"was changed): run the newer version")


def _seal(key: bytes, payload: bytes) -> bytes:
    """The stored form of `payload` under `key`: its checksum, then the payload."""
    return _CRC.pack(zlib.crc32(payload, zlib.crc32(key))) + payload


class LmdbStore:
    """A node's durable state in one LMDB environment. One thread only (the node's loop).

    `stage` applies writes to an open write transaction (reads see them); `sync`
    commits that transaction in one LMDB commit. See the module docstring for the layout.
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
        self._max_map_size = max_map_size_bytes
        self._app_db_names = {table: b"app." + table.encode()
                              for table in check_app_tables(app_tables)}
        self._db_names = (*_CORE_DB_NAMES, *self._app_db_names.values())
        self._txn: lmdb.Transaction[bytes] | None = None
        self._writer_thread: int | None = None  # the thread that stages and syncs
        self._readers = threading.local()  # per thread: a reusable read transaction
        self._generation = 0  # commits so far: a cached read txn from before one is stale
        self._map_generation = 0  # map resizes so far: they invalidate every txn
        # Held by readers on other threads for the length of a read; see _grow.
        self.readers_lock: threading.Lock | contextlib.nullcontext[None] = (
            contextlib.nullcontext())
        # What is staged since the last commit, in order. The open transaction
        # holds exactly `_staged`, and can be rebuilt from it. `_unfitted` follows
        # it: writes staged from the first batch that LMDB could not take on (a
        # full map or disk). They are kept so that no later commit can leave them
        # out, and the next `sync` tries to fit them again.
        self._staged: list[_AnyWrite] = []
        self._unfitted: list[_AnyWrite] = []
        self._unfit_reason: StorageError | None = None
        self._lock_fd = self._lock_directory()
        try:
            self._env: lmdb.Environment | None = self._open_env(map_size_bytes)
        except BaseException:
            os.close(self._lock_fd)
            raise
        # Room for the NUL and the slot in the longest (vote and chosen) keys.
        self._max_account_bytes = self._env.max_key_size() - 1 - _SLOT_SIZE
        try:
            self._open_tables()
        except BaseException:
            self._env.close()
            os.close(self._lock_fd)
            raise

    def _lock_directory(self) -> int:
        """Create the directory if needed and lock it against a second node process.

        LMDB itself lets several processes share an environment, but this store
        keeps a write transaction open between `stage` and `sync`: a second
        process would block inside LMDB's writer lock (freezing its event loop),
        and two nodes sharing one data directory would be a bug anyway.
        """
        if os.path.exists(self._path) and not os.path.isdir(self._path):
            raise StorageError(
                f"{self._path} is a file, not a directory: an LMDB store is a directory "
                f"(give a directory path that does not exist yet, or an existing store)"
            )
        try:
            os.makedirs(self._path, exist_ok=True)
            fd = os.open(os.path.join(self._path, _LOCK_FILE), os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StorageError(f"cannot create or open the store directory {self._path}: "
                               f"{exc}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise StorageError(
                f"the store at {self._path} is in use by another process (or already open "
                f"in this one): stop it first"
            ) from None
        return fd

    def _open_env(self, map_size_bytes: int) -> lmdb.Environment:
        try:
            return lmdb.open(
                self._path,
                map_size=map_size_bytes,
                subdir=True,
                create=True,
                # Durability over speed: every commit is fsynced, meta page included.
                sync=True,
                metasync=True,
                # With writemap a stray write through the map could corrupt the file,
                # and a full disk shows up as SIGBUS instead of an error.
                writemap=False,
                map_async=False,
                max_dbs=len(self._db_names),
                # One reader at a time in this process, plus room for inspection tools.
                max_readers=32,
                # Reuse the one read transaction instead of setting one up per read.
                max_spare_txns=1,
            )
        except lmdb.Error as exc:
            raise StorageError(f"cannot open the LMDB store at {self._path}: {exc}") from exc

    def _open_tables(self) -> None:
        env = self._require_env()
        try:
            with env.begin(write=True) as txn:
                dbs = {name: env.open_db(name, txn=txn, create=True) for name in self._db_names}
                meta = dbs[_META]
                raw = txn.get(_META_FORMAT, db=meta)
                if raw is None:
                    # New, unless the environment holds anything but our empty tables.
                    foreign = set(txn.cursor().iternext(values=False)) - set(self._db_names)
                    if foreign or any(txn.stat(db)["entries"] for db in dbs.values()):
                        raise StorageError(
                            f"{self._path} holds LMDB data without a format version: "
                            f"not a store this program wrote"
                        )
                    txn.put(_META_FORMAT, _seal(_META_FORMAT, _U64.pack(FORMAT_VERSION)),
                            db=meta)
                else:
                    payload = self._checked(_META_FORMAT, raw, "the format version")
                    version = _U64.unpack(payload)[0]
                    if version != FORMAT_VERSION:
                        raise StorageError(format_refusal(self._path, version))
        except lmdb.Error as exc:
            raise self._storage_error(exc, "opening its tables") from exc
        # Handles stay valid for the environment's life; caching them saves a
        # dict lookup by name on every put and get.
        self._db_meta = meta
        self._db_promise = dbs[_PROMISE]
        self._db_vote = dbs[_VOTE]
        self._db_chosen = dbs[_CHOSEN]
        self._db_tail = dbs[_TAIL]
        self._db_app = {table: dbs[name] for table, name in self._app_db_names.items()}

    def _app_db(self, table: str) -> lmdb._Database:
        db = self._db_app.get(table)
        if db is None:
            raise UnknownTable(f"no application table {table!r} in the store at {self._path} "
                               f"(declared: {sorted(self._db_app)})")
        return db

    @property
    def path(self) -> str:
        """The store's directory."""
        return self._path

    def map_size(self) -> int:
        """The current LMDB map size in bytes (it grows by doubling as data is added)."""
        return self._require_env().info()["map_size"]

    # Staging and commit

    def stage(self, writes: Iterable[Write | AppWrite]) -> None:
        """Apply `writes` so reads see them; durable at the next `sync`.

        A batch that breaks an invariant (AssertionError, like MemoryStore's
        asserts) or that no store could hold (ValueError) is refused whole: none
        of it is staged, and what was staged before stays staged.

        A batch that does not fit (`StorageFull`), or that LMDB fails to take for
        another reason (`StorageError`), raises too, but stays staged: the caller
        has already acted on these writes, so no later commit may leave them out.
        Until a `sync` manages to commit them, every `sync` (and `stage`) raises,
        and reads show the state staged before that batch (or raise, if even that
        cannot be rebuilt: a read never silently misses an earlier staged write).
        """
        self._stage(list(writes))

    def _stage(self, batch: list[_AnyWrite]) -> None:
        self._writer_thread = threading.get_ident()
        if not batch:
            return
        if self._unfit_reason is not None:
            self._unfitted.extend(batch)
            reason = self._unfit_reason
            raise type(reason)(
                f"staged, behind writes the store could not take yet ({reason}); the next "
                f"sync retries them all"
            )
        self._require_env()
        txn = self._txn
        if txn is None:
            try:
                txn = self._write_txn()
            except StorageError as error:  # the earlier staged writes cannot be rebuilt
                self._keep_unfitted(batch, error)
                raise
        try:
            self._apply(txn, batch)
        except lmdb.MapFullError:
            self._drop_txn()
            try:
                self._txn = self._rebuild(batch, grow_first=True)
            except StorageError as error:
                self._keep_unfitted(batch, error)
                raise
            except BaseException:
                self._restore()
                raise
        except (lmdb.Error, OSError) as exc:
            self._drop_txn()
            failure = self._storage_error(exc, "staging writes")
            self._keep_unfitted(batch, failure)
            raise failure from exc
        except StorageError as error:  # Corruption of a record the batch builds on
            self._drop_txn()
            self._keep_unfitted(batch, error)
            raise
        except BaseException:
            self._drop_txn()
            self._restore()
            raise
        self._staged.extend(batch)

    def _keep_unfitted(self, batch: list[_AnyWrite], reason: StorageError) -> None:
        """Keep a batch LMDB could not take as staged, and the earlier ones readable."""
        self._unfitted.extend(batch)
        self._unfit_reason = reason
        self._restore()

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
        if not self._staged and not self._unfitted:
            self._drop_txn()  # an empty transaction left by a refused batch
            return
        if self._unfitted:
            self._drop_txn()
            try:
                self._txn = self._rebuild(self._unfitted)
            except StorageError as error:
                self._unfit_reason = error
                self._restore()
                raise
            except BaseException:
                self._restore()
                raise
            self._staged.extend(self._unfitted)
            self._unfitted.clear()
            self._unfit_reason = None
        while True:
            txn = self._write_txn()
            self._txn = None
            try:
                txn.commit()
            except lmdb.MapFullError:
                # The commit itself may need pages (LMDB's free list). The failed
                # commit aborted the transaction; grow and rebuild it.
                try:
                    self._grow()
                except StorageFull:
                    self._restore()
                    raise
                continue
            except (lmdb.Error, OSError) as exc:
                # LMDB writes the meta page last: a failed commit leaves the last
                # committed state as it was, and the staged writes are still listed.
                failure = self._storage_error(exc, "committing staged writes")
                self._restore()
                raise failure from exc
            break
        self._staged.clear()
        self._generation += 1

    def close(self) -> None:
        """Sync, then close. Closing twice is harmless; the store is unusable afterwards.

        If the sync fails the environment is closed anyway (the process is going
        away) and the error is raised: what was staged is lost, as in a crash.
        """
        if self._env is None:
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
        if self._env is not None:
            self._shut()

    def _shut(self) -> None:
        self._drop_txn()
        self._staged.clear()
        self._unfitted.clear()
        self._unfit_reason = None
        env, self._env = self._env, None
        try:
            if env is not None:
                env.close()
        finally:
            os.close(self._lock_fd)

    def _require_env(self) -> lmdb.Environment:
        env = self._env
        if env is None:
            raise StorageError(f"the store at {self._path} is closed")
        return env

    def _write_txn(self) -> lmdb.Transaction[bytes]:
        """The open write transaction, opening it (and replaying staged writes) if needed."""
        self._writer_thread = threading.get_ident()
        txn = self._txn
        if txn is None:
            env = self._require_env()
            if self._staged:
                txn = self._rebuild([])
            else:
                try:
                    txn = env.begin(write=True)
                except lmdb.Error as exc:
                    raise self._storage_error(exc, "starting a write transaction") from exc
            self._txn = txn
        return txn

    def _drop_txn(self) -> None:
        txn, self._txn = self._txn, None
        if txn is not None:
            txn.abort()

    def _rebuild(
        self, extra: Sequence[_AnyWrite], *, grow_first: bool = False
    ) -> lmdb.Transaction[bytes]:
        """A new write transaction holding the staged writes plus `extra`, growing as needed."""
        env = self._require_env()
        if grow_first:
            self._grow()
        while True:
            try:
                txn = env.begin(write=True)
            except lmdb.Error as exc:
                raise self._storage_error(exc, "starting a write transaction") from exc
            try:
                self._apply(txn, self._staged)
                self._apply(txn, extra)
            except lmdb.MapFullError:
                txn.abort()
                self._grow()
                continue
            except (lmdb.Error, OSError) as exc:
                txn.abort()
                raise self._storage_error(exc, "staging writes") from exc
            except BaseException:
                txn.abort()
                raise
            return txn

    def _restore(self) -> None:
        """After a failure, reopen the transaction holding what was staged, if possible.

        If even that fails the transaction stays closed; `_staged` still lists the
        writes, and the next read, stage or sync rebuilds it (or raises again).
        """
        if not self._staged:
            return
        try:
            self._txn = self._rebuild([])
        except Exception as exc:
            log.warning("could not restore the staged writes of %s yet: %s", self._path, exc)

    def _grow(self) -> None:
        """Double the map, up to `max_map_size_bytes`. No transaction may be open."""
        env = self._require_env()
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
                self._map_generation += 1  # every thread's cached read txn is now invalid
        except lmdb.Error as exc:
            raise self._storage_error(exc, f"growing the map to {new} bytes") from exc
        log.info("grew the LMDB map of %s from %d to %d bytes", self._path, current, new)

    def _storage_error(self, exc: BaseException, doing: str) -> StorageError:
        """The `StorageError` (or `StorageFull`) to raise for an LMDB or OS error."""
        # py-lmdb >= 3 sets `code` (the errno) on the errors it raises; older releases
        # only say it in the message, so look there too.
        code = exc.errno if isinstance(exc, OSError) else getattr(exc, "code", None)
        text = str(exc)
        full = (
            isinstance(exc, lmdb.DiskError)
            or code in _FULL_ERRNOS
            or any(symptom in text for symptom in _FULL_SYMPTOMS)
        )
        free = self._free_disk_bytes()
        if not full and (code == errno.EIO or "Input/output error" in text):
            full = free is not None and free < _LOW_DISK_BYTES
        if full:
            room = "unknown" if free is None else f"{free} bytes"
            return StorageFull(
                f"the disk holding the store at {self._path} is full ({text}; free: {room}) "
                f"while {doing}: free disk space, then retry; nothing staged was lost and the "
                f"last synced state is intact"
            )
        return StorageError(f"LMDB failed while {doing} in {self._path}: {text}")

    def _free_disk_bytes(self) -> int | None:
        try:
            stat = os.statvfs(self._path)
        except OSError:
            return None
        return stat.f_bavail * stat.f_frsize

    def _account_key(self, account: str) -> bytes:
        """The key prefix of `account` in every table: its UTF-8 bytes, then NUL."""
        raw = account.encode()
        if b"\x00" in raw or len(raw) > self._max_account_bytes:
            raise ValueError(
                f"account {account!r} cannot be stored: it must hold no NUL character and "
                f"be at most {self._max_account_bytes} bytes of UTF-8"
            )
        return raw + b"\x00"

    def _apply(self, txn: lmdb.Transaction[bytes], writes: Sequence[_AnyWrite]) -> None:
        """Apply writes in order, with MemoryTables.apply's semantics and checks.

        The checks raise AssertionError like MemoryStore's asserts, but are not
        asserts: they guard what goes to disk, so they must survive ``python -O``.
        """
        # Locals: this loop runs once per write, thousands of times a second.
        put = txn.put
        get = txn.get
        crc32 = zlib.crc32
        pack_crc = _CRC.pack
        pack_u64 = _U64.pack
        pack_ballot = _BALLOT.pack
        account_key = self._account_key
        decode_promise = self._decode_promise
        decode_tail = self._decode_tail
        promise_db, vote_db = self._db_promise, self._db_vote
        chosen_db, tail_db = self._db_chosen, self._db_tail
        for write in writes:
            kind = type(write)
            if kind is AcceptWrite:
                assert isinstance(write, AcceptWrite)
                account = write.account
                prefix = account_key(account)
                ballot = write.ballot
                promised = decode_promise(get(prefix, db=promise_db), prefix, account)
                if ballot < promised:
                    raise AssertionError(f"a vote under {ballot} below the promise {promised}")
                if write.slot <= decode_tail(get(prefix, db=tail_db), prefix, account)[0]:
                    raise AssertionError("a vote on a decided slot")
                key = prefix + pack_u64(write.slot)
                body = pack_ballot(ballot.round, ballot.node_index) + write.value
                put(key, pack_crc(crc32(body, crc32(key))) + body, db=vote_db)
            elif kind is ChosenWrite:
                assert isinstance(write, ChosenWrite)
                account = write.account
                prefix = account_key(account)
                through, digest = decode_tail(get(prefix, db=tail_db), prefix, account)
                if write.slot != through + 1:
                    raise AssertionError("chosen values extend the prefix in order")
                key = prefix + pack_u64(write.slot)
                value = write.value
                put(key, pack_crc(crc32(value, crc32(key))) + value, db=chosen_db)
                tail = _TAIL_BODY.pack(write.slot, chain_digest(digest, value))
                put(prefix, pack_crc(crc32(tail, crc32(prefix))) + tail, db=tail_db)
                # The chosen value supersedes the vote: the vote table keeps only
                # undecided votes, which accounts_with_votes relies on.
                txn.delete(key, db=vote_db)
            elif kind is AppWrite:
                assert isinstance(write, AppWrite)
                db = self._app_db(write.table)
                if not write.key:
                    raise ValueError("application keys must not be empty (LMDB refuses them)")
                if write.value is None:
                    txn.delete(write.key, db=db)
                else:
                    put(write.key, _seal(write.key, write.value), db=db)
            elif kind is PromiseWrite:
                assert isinstance(write, PromiseWrite)
                account = write.account
                prefix = account_key(account)
                ballot = write.ballot
                promised = decode_promise(get(prefix, db=promise_db), prefix, account)
                if not ballot > promised:
                    raise AssertionError(f"promise {ballot} does not rise above {promised}")
                put(prefix, _seal(prefix, pack_ballot(ballot.round, ballot.node_index)),
                    db=promise_db)
            elif kind is RoundWrite:
                assert isinstance(write, RoundWrite)
                raw = get(_META_ROUND, db=self._db_meta)
                if raw is not None and write.reserved_round < _U64.unpack(
                    self._checked(_META_ROUND, raw, "the reserved round")
                )[0]:
                    raise AssertionError("the reserved round may never go down")
                put(_META_ROUND, _seal(_META_ROUND, pack_u64(write.reserved_round)),
                    db=self._db_meta)
            elif kind is _MetaWrite:
                assert isinstance(write, _MetaWrite)
                put(write.key, _seal(write.key, write.value), db=self._db_meta)
            else:
                raise TypeError(f"not a storage write: {write!r}")

    # Decoding, with the checksum verified on every read

    def _checked(self, key: bytes, raw: bytes, what: str, *args: object) -> bytes:
        """The payload of a stored record, after verifying its checksum.

        `what % args` names the record; it is only formatted if the check fails,
        since this runs for every record read.
        """
        if len(raw) >= _CRC_SIZE:
            payload = raw[_CRC_SIZE:]
            stored = _CRC.unpack_from(raw)[0]
            computed = zlib.crc32(payload, zlib.crc32(key))
            if stored == computed:
                return payload
            detail = f"stored crc32 {stored:#010x}, computed {computed:#010x}"
        else:
            detail = f"only {len(raw)} bytes"
        raise Corruption(
            f"{what % args} in the store at {self._path} failed its checksum ({detail}): the data "
            f"on disk is damaged; rebuild this node from a healthy replica"
        )

    def _decode_promise(self, raw: bytes | None, key: bytes, account: str) -> Ballot:
        if raw is None:
            return NULL_BALLOT
        payload = self._checked(key, raw, "the promise of account %r", account)
        return Ballot(*_BALLOT.unpack(payload))

    def _decode_tail(self, raw: bytes | None, key: bytes, account: str) -> tuple[int, bytes]:
        if raw is None:
            return -1, EMPTY_DIGEST
        through, digest = _TAIL_BODY.unpack(
            self._checked(key, raw, "the chosen tail of account %r", account)
        )
        return through, digest

    def _vote_entry(self, key: bytes, raw: bytes, account: str, slot: int) -> AcceptedEntry:
        payload = self._checked(key, raw, "the vote of account %r at slot %d", account,
                                slot)
        round_, node_index = _BALLOT.unpack_from(payload)
        return AcceptedEntry(slot, Ballot(round_, node_index), payload[_BALLOT.size:])

    # Reads: through the write transaction if one is open, else a short read transaction

    def _reader(self) -> lmdb.Transaction[bytes]:
        """The transaction a read goes through; hand it back to `_done` afterwards.

        If writes are staged but their transaction had to be dropped (a failure
        it could not be rebuilt after), this rebuilds it, so a read never misses
        a staged write: it raises instead.
        """
        writer = self._writer_thread == threading.get_ident()
        txn = self._txn
        if txn is not None and writer:
            return txn
        if self._staged and writer:
            return self._write_txn()
        # Another thread (a GroupCommitStore's readers while its writer commits): the
        # committed state, through a read transaction of its own. It is kept for the
        # next read until a commit (or a map resize) makes it stale: opening one costs
        # more than the read. A GroupCommitStore keeps what it has not pruned yet in
        # its overlay, so a snapshot older than the newest commit never misses a write.
        cached = getattr(self._readers, "txn", None)
        if cached is not None and self._readers.map_generation == self._map_generation:
            if self._readers.generation == self._generation:
                return cached
            cached.abort()  # stale, but still alive (a resize would have closed it)
        txn = self._require_env().begin()
        self._readers.txn = txn
        self._readers.generation = self._generation
        self._readers.map_generation = self._map_generation
        return txn

    def _done(self, txn: lmdb.Transaction[bytes]) -> None:
        if txn is not self._txn and txn is not getattr(self._readers, "txn", None):
            txn.abort()

    def reserved_round(self) -> int:
        txn = self._reader()
        try:
            raw = txn.get(_META_ROUND, db=self._db_meta)
            if raw is None:
                return 0
            return int(_U64.unpack(self._checked(_META_ROUND, raw, "the reserved round"))[0])
        finally:
            self._done(txn)

    def account_record(self, account: str) -> AccountRecord:
        prefix = self._account_key(account)
        txn = self._reader()
        try:
            promised = self._decode_promise(txn.get(prefix, db=self._db_promise), prefix, account)
            through = self._decode_tail(txn.get(prefix, db=self._db_tail), prefix, account)[0]
            votes: list[AcceptedEntry] = []
            cursor = txn.cursor(db=self._db_vote)
            if cursor.set_range(prefix + _U64.pack(through + 1)):
                start = len(prefix)
                for key, raw in cursor:
                    if not key.startswith(prefix):
                        break
                    slot = _U64.unpack_from(key, start)[0]
                    votes.append(self._vote_entry(key, raw, account, slot))
            return AccountRecord(promised, through, tuple(votes))
        finally:
            self._done(txn)

    def chosen_values(self, account: str, from_slot: int, limit: int) -> Sequence[bytes]:
        assert from_slot >= 0 and limit >= 0
        prefix = self._account_key(account)
        values: list[bytes] = []
        if limit == 0:
            return values
        txn = self._reader()
        try:
            cursor = txn.cursor(db=self._db_chosen)
            if not cursor.set_range(prefix + _U64.pack(from_slot)):
                return values
            expected = from_slot
            for key, raw in cursor:
                if not key.startswith(prefix):
                    break
                if _U64.unpack_from(key, len(prefix))[0] != expected:
                    # A gap: chosen values are written strictly in order, so this
                    # store lost a record.
                    raise Corruption(
                        f"the chosen values of account {account!r} in the store at "
                        f"{self._path} skip slot {expected}: the data on disk is damaged"
                    )
                values.append(self._checked(
                    key, raw, "the chosen value of account %r at slot %d", account, expected
                ))
                expected += 1
                if len(values) == limit:
                    break
            return values
        finally:
            self._done(txn)

    def _tails_after(self, after: str, limit: int) -> list[tuple[str, int, bytes]]:
        rows: list[tuple[str, int, bytes]] = []
        if limit <= 0:
            return rows
        # The first key at or above `after` + "\x01" belongs to the first account
        # strictly after `after` (accounts hold no NUL, and their keys end in NUL).
        seek = after.encode() + b"\x01"
        txn = self._reader()
        try:
            cursor = txn.cursor(db=self._db_tail)
            if not cursor.set_range(seek):
                return rows
            for key, raw in cursor:
                account = key[:-1].decode()
                through, digest = self._decode_tail(raw, key, account)
                rows.append((account, through, digest))
                if len(rows) == limit:
                    break
            return rows
        finally:
            self._done(txn)

    def account_tails(self, after: str, limit: int) -> Sequence[AccountTail]:
        return [AccountTail(account, through) for account, through, _ in
                self._tails_after(after, limit)]

    def accounts_with_votes(self) -> Sequence[str]:
        # The vote table holds only undecided votes (ChosenWrite deletes the vote it
        # decides), so every account with a row qualifies. Hop from account to
        # account instead of reading every vote.
        accounts: list[str] = []
        txn = self._reader()
        try:
            cursor = txn.cursor(db=self._db_vote)
            found = cursor.first()
            while found:
                key = cursor.key()
                raw_account = key[:key.index(b"\x00")]
                accounts.append(raw_account.decode())
                found = cursor.set_range(raw_account + b"\x01")
            return accounts
        finally:
            self._done(txn)

    def account_summary(self, account: str) -> AccountSummary:
        prefix = self._account_key(account)
        txn = self._reader()
        try:
            through, digest = self._decode_tail(txn.get(prefix, db=self._db_tail), prefix, account)
            return AccountSummary(account, through, digest)
        finally:
            self._done(txn)

    def account_summaries(self, after: str, limit: int) -> Sequence[AccountSummary]:
        return [AccountSummary(account, through, digest) for account, through, digest in
                self._tails_after(after, limit)]

    def identity(self) -> NodeIdentity | None:
        txn = self._reader()
        try:
            raw = txn.get(_META_IDENTITY, db=self._db_meta)
        finally:
            self._done(txn)
        if raw is None:
            return None
        decoded = json.loads(self._checked(_META_IDENTITY, raw, "the node identity"))
        return NodeIdentity(
            decoded["node_id"], tuple((node, address) for node, address in decoded["cluster"])
        )

    def set_identity(self, identity: NodeIdentity) -> None:
        """Record the identity and commit at once (with anything else staged)."""
        encoded = json.dumps(
            {"node_id": identity.node_id, "cluster": [list(pair) for pair in identity.cluster]}
        ).encode()
        self._stage([_MetaWrite(_META_IDENTITY, encoded)])
        self.sync()

    def app_get(self, table: str, key: bytes) -> bytes | None:
        db = self._app_db(table)
        if not key:
            return None
        txn = self._reader()
        try:
            raw = txn.get(key, db=db)
            if raw is None:
                return None
            return self._checked(key, raw, "the %s entry %r", table, key)
        finally:
            self._done(txn)

    def app_get_many(self, table: str, keys: Sequence[bytes]) -> list[bytes | None]:
        db = self._app_db(table)
        wanted = sorted({key for key in keys if key})
        if not wanted:
            return [None] * len(keys)
        txn = self._reader()
        try:
            # One call into LMDB for all of them: each separate get would let the
            # writer thread take the GIL in between.
            found = dict(txn.cursor(db=db).getmulti(wanted))
        finally:
            self._done(txn)
        values: list[bytes | None] = []
        for key in keys:
            raw = found.get(key)
            values.append(None if raw is None else
                          self._checked(key, raw, "the %s entry %r", table, key))
        return values

    def app_range(
        self, table: str, start: bytes, stop: bytes, limit: int
    ) -> Sequence[tuple[bytes, bytes]]:
        db = self._app_db(table)
        rows: list[tuple[bytes, bytes]] = []
        if limit <= 0 or start >= stop:
            return rows
        txn = self._reader()
        try:
            cursor = txn.cursor(db=db)
            found = cursor.set_range(start) if start else cursor.first()
            if not found:
                return rows
            for key, raw in cursor:
                if key >= stop:
                    break
                rows.append((key, self._checked(key, raw, "the %s entry %r", table, key)))
                if len(rows) == limit:
                    break
            return rows
        finally:
            self._done(txn)
