"""The store's directory: whether it holds a store, and the lock that keeps a second process out."""

from __future__ import annotations

import fcntl
import os
from typing import Final

from ledger.storage.base import StorageError

DATA_FILE: Final = "data.mdb"  # what LMDB creates in the directory (subdir=True)
LOCK_FILE: Final = "ledger.lock"  # our own exclusive lock; LMDB's lock.mdb allows many processes


def store_exists(path: str | os.PathLike[str]) -> bool:
    """Whether `path` is a directory that already holds an LMDB store (without opening it)."""
    return os.path.isfile(os.path.join(os.fspath(path), DATA_FILE))


def lock_directory(path: str) -> int:
    """Create the directory if needed and lock it against a second node process.

    Returns the lock file's descriptor: the lock lasts until it is closed (or the
    process dies, so a crash never leaves a stale lock behind).

    LMDB itself lets several processes share an environment, but this store
    keeps a write transaction open between `stage` and `sync`: a second
    process would block inside LMDB's writer lock (freezing its event loop),
    and two nodes sharing one data directory would be a bug anyway.
    """
    if os.path.exists(path) and not os.path.isdir(path):
        raise StorageError(
            f"{path} is a file, not a directory: an LMDB store is a directory "
            f"(give a directory path that does not exist yet, or an existing store)"
        )
    try:
        os.makedirs(path, exist_ok=True)
        fd = os.open(os.path.join(path, LOCK_FILE), os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise StorageError(f"cannot create or open the store directory {path}: "
                           f"{exc}") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise StorageError(
            f"the store at {path} is in use by another process (or already open "
            f"in this one): stop it first"
        ) from None
    return fd
