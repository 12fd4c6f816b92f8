"""What an LMDB or OS error means for the operator: a full disk (`StorageFull`) or another
`StorageError`.

A full disk rarely says so: a page write cut short by it comes back from LMDB
as EIO. An I/O error while the filesystem is nearly full is therefore reported
as `StorageFull` too, so the operator is told what to fix.
"""

from __future__ import annotations

import errno
import os
from typing import Final

import lmdb

from ledger.storage.base import StorageError, StorageFull

#: An I/O error with less free space than this on the store's filesystem is
#: reported as a full disk: LMDB turns a short write (the usual symptom of a disk
#: filling up mid-commit) into EIO, not ENOSPC.
LOW_DISK_BYTES: Final = 64 << 20
_FULL_ERRNOS: Final = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
_FULL_SYMPTOMS: Final = ("No space left", "quota exceeded", "File too large")


def storage_error(path: str, exc: BaseException, doing: str) -> StorageError:
    """The `StorageError` (or `StorageFull`) to raise for an LMDB or OS error.

    `doing` says what the store was doing ("committing staged writes"); the
    message names the store at `path`.
    """
    # py-lmdb >= 3 sets `code` (the errno) on the errors it raises; older releases
    # only say it in the message, so look there too.
    code = exc.errno if isinstance(exc, OSError) else getattr(exc, "code", None)
    text = str(exc)
    full = (
        isinstance(exc, lmdb.DiskError)
        or code in _FULL_ERRNOS
        or any(symptom in text for symptom in _FULL_SYMPTOMS)
    )
    free = free_disk_bytes(path)
    if not full and (code == errno.EIO or "Input/output error" in text):
        full = free is not None and free < LOW_DISK_BYTES
    if full:
        room = "unknown" if free is None else f"{free} bytes"
        return StorageFull(
            f"the disk holding the store at {path} is full ({text}; free: {room}) "
            f"while {doing}: free disk space, then retry; nothing staged was lost and the "
            f"last synced state is intact"
        )
    return StorageError(f"LMDB failed while {doing} in {path}: {text}")


def free_disk_bytes(path: str) -> int | None:
    """Bytes an unprivileged writer may still use on `path`'s filesystem; None if unknown."""
    try:
        stat = os.statvfs(path)
    except OSError:
        return None
    return stat.f_bavail * stat.f_frsize
