"""Which transaction a read goes through, and the per-thread cache of read transactions."""

from __future__ import annotations

import threading

import lmdb


class ReadTransactions:
    """Hands each read the transaction it must go through, and takes it back after.

    On the writing thread that is the open write transaction, so a read sees
    what is staged. On any other thread (a GroupCommitStore's readers while its
    writer commits) it is a read transaction of the committed state, kept for the
    thread's next read until a commit or a map resize makes it stale: opening one
    costs more than the read.

    A base class of `StagedWrites`, which keeps the write side of this state (the
    attributes and methods declared below): a read then looks at it as cheaply
    as when both were one class, which matters, since every read does.
    """

    # Kept by the subclass: the open write transaction, the writes it holds, and
    # the thread that writes.
    txn: lmdb.Transaction[bytes] | None
    staged: list[object]
    writer_thread: int | None

    def __init__(self) -> None:
        # Bumped by the subclass; a thread's cached read transaction is renewed when
        # either moved since it was opened.
        self.generation = 0  # commits so far: a read txn from before one is stale
        self.map_generation = 0  # map resizes so far: they invalidate every txn
        self._cached = threading.local()  # per thread: txn, generation, map_generation

    def write_txn(self) -> lmdb.Transaction[bytes]:
        """The open write transaction, rebuilt from `staged` if it had to be dropped."""
        raise NotImplementedError

    def require_env(self) -> lmdb.Environment:
        """The environment; `StorageError` if the store is closed."""
        raise NotImplementedError

    def begin_read(self) -> lmdb.Transaction[bytes]:
        """The transaction a read goes through; hand it back to `end_read` afterwards.

        If writes are staged but their transaction had to be dropped (a failure
        it could not be rebuilt after), this rebuilds it, so a read never misses
        a staged write: it raises instead.
        """
        writer = self.writer_thread == threading.get_ident()
        txn = self.txn
        if txn is not None and writer:
            return txn
        if self.staged and writer:
            return self.write_txn()
        # A GroupCommitStore keeps what it has not pruned yet in its overlay, so a
        # snapshot older than the newest commit never misses a write.
        cached = self._cached
        reader = getattr(cached, "txn", None)
        env = self.require_env()  # a closed store refuses reads, cached reader or not
        if reader is not None and cached.map_generation == self.map_generation:
            if cached.generation == self.generation:
                return reader
            reader.abort()  # stale, but still alive (a resize would have closed it)
        txn = env.begin()
        cached.txn = txn
        cached.generation = self.generation
        cached.map_generation = self.map_generation
        return txn

    def end_read(self, txn: lmdb.Transaction[bytes]) -> None:
        """Done reading through `txn`: abort it unless it is kept for the next read."""
        if txn is not self.txn and txn is not getattr(self._cached, "txn", None):
            txn.abort()
