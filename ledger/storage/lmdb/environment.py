"""Opening the LMDB environment: its settings, the format version check, the table handles."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import lmdb

from ledger.storage.base import StorageError, UnknownTable
from ledger.storage.lmdb.errors import storage_error
from ledger.storage.lmdb.records import META_FORMAT, U64, Records, seal

#: Bumped when the on-disk layout changes; a store of another version is refused, not misread.
#: 2: the bank's records have a schema of their own (no public API type is stored).
#: 3: incarnations, peer records, commit counts and recovery fences.
FORMAT_VERSION: Final = 3

_META = b"meta"
_PROMISE = b"promise"
_VOTE = b"vote"
_CHOSEN = b"chosen"
_TAIL = b"tail"
_FENCE = b"fence"
_CORE_DB_NAMES: Final = (_META, _PROMISE, _VOTE, _CHOSEN, _TAIL, _FENCE)


def format_refusal(path: str, version: int) -> str:
    """Why a store of another on-disk format is not opened, and what to do about it."""
    if version < FORMAT_VERSION:
        return (f"the store at {path} has on-disk format version {version}, written by an "
                f"older version of the ledger; this version reads format {FORMAT_VERSION} only "
                f"and cannot convert it (nothing was changed): run the version that wrote it")
    return (f"the store at {path} has on-disk format version {version}, written by a newer "
            f"version of the ledger; this version reads format {FORMAT_VERSION} only (nothing "
            f"was changed): run the newer version")


def app_db_name(table: str) -> bytes:
    """The LMDB database holding application table `table`."""
    return b"app." + table.encode()


def table_count(app_tables: Sequence[str]) -> int:
    """How many named databases a store with these application tables opens."""
    return len(_CORE_DB_NAMES) + len(app_tables)


@dataclass(frozen=True, slots=True)
class Tables:
    """The open handles of a store's named databases.

    Handles stay valid for the environment's life; holding them saves a lookup
    by name on every put and get.
    """

    path: str  # for the UnknownTable message
    meta: lmdb._Database
    promise: lmdb._Database
    vote: lmdb._Database
    chosen: lmdb._Database
    tail: lmdb._Database
    fence: lmdb._Database
    app: dict[str, lmdb._Database]

    def app_db(self, table: str) -> lmdb._Database:
        """The handle of application table `table`; `UnknownTable` if it was not declared."""
        db = self.app.get(table)
        if db is None:
            raise UnknownTable(f"no application table {table!r} in the store at {self.path} "
                               f"(declared: {sorted(self.app)})")
        return db


def open_environment(path: str, map_size_bytes: int, max_dbs: int) -> lmdb.Environment:
    """Open (creating if needed) the environment in directory `path`, durable on every commit."""
    try:
        return lmdb.open(
            path,
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
            max_dbs=max_dbs,
            # One reader at a time in this process, plus room for inspection tools.
            max_readers=32,
            # Reuse the one read transaction instead of setting one up per read.
            max_spare_txns=1,
        )
    except (lmdb.InvalidError, lmdb.CorruptedError, lmdb.PageNotFoundError) as exc:
        raise StorageError(
            f"cannot open the LMDB store at {path}: {exc}: its structure is damaged. Run "
            f"`ledger recover` on this node (see README, 'Losing a disk'): it keeps nothing "
            f"it cannot read and fetches the rest from the other members") from exc
    except lmdb.Error as exc:
        raise StorageError(f"cannot open the LMDB store at {path}: {exc}") from exc


def open_tables(env: lmdb.Environment, records: Records, app_tables: Sequence[str]) -> Tables:
    """Open every table, creating them in a new store; refuse a store of another format.

    A new store is stamped with `FORMAT_VERSION`. An environment without a
    format version that holds anything but our empty tables was not written by
    this program and is refused rather than written into.
    """
    path = records.path
    app_names = {table: app_db_name(table) for table in app_tables}
    names = (*_CORE_DB_NAMES, *app_names.values())
    try:
        with env.begin(write=True) as txn:
            dbs = {name: env.open_db(name, txn=txn, create=True) for name in names}
            meta = dbs[_META]
            raw = txn.get(META_FORMAT, db=meta)
            if raw is None:
                # New, unless the environment holds anything but our empty tables.
                foreign = set(txn.cursor().iternext(values=False)) - set(names)
                if foreign or any(txn.stat(db)["entries"] for db in dbs.values()):
                    raise StorageError(
                        f"{path} holds LMDB data without a format version: "
                        f"not a store this program wrote"
                    )
                txn.put(META_FORMAT, seal(META_FORMAT, U64.pack(FORMAT_VERSION)), db=meta)
            else:
                payload = records.checked(META_FORMAT, raw, "the format version")
                version = U64.unpack(payload)[0]
                if version != FORMAT_VERSION:
                    raise StorageError(format_refusal(path, version))
    except lmdb.Error as exc:
        raise storage_error(path, exc, "opening its tables") from exc
    return Tables(
        path=path,
        meta=meta,
        promise=dbs[_PROMISE],
        vote=dbs[_VOTE],
        chosen=dbs[_CHOSEN],
        tail=dbs[_TAIL],
        fence=dbs[_FENCE],
        app={table: dbs[name] for table, name in app_names.items()},
    )
