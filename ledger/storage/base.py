"""The storage contract every backend implements (in-memory and LMDB).

A store is the node's single writer. Writes are *staged* (visible to reads at
once, so the core never sees its own state go backwards) and made durable by
`sync`, one commit with one fsync for everything staged since the last one
(group commit). A crash loses what was staged but not synced, and nothing else.

Besides the Paxos state the core asks for (`ledger.paxos.records`), a store
keeps: the node's identity, a per-account tail (chosen prefix end and a chained
digest of the chosen values, for status and anti-entropy), and the application
tables that the layer above declares when it opens the store (the bank's state
machine names its own): opaque keys and values it encodes itself (`AppWrite`).
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from ledger.paxos.errors import InvariantViolation
from ledger.paxos.records import DurableView, Write

EMPTY_DIGEST = bytes(16)
APP_TABLE_NAME = re.compile(r"[a-z0-9_]{1,32}")


def chain_digest(previous: bytes, value: bytes) -> bytes:
    """The digest of a log after appending `value` to a log whose digest is `previous`."""
    return hashlib.blake2b(previous + value, digest_size=16).digest()


@dataclass(frozen=True, slots=True)
class AppWrite:
    """Put `value` under `key` in application table `table` (None deletes)."""

    table: str
    key: bytes
    value: bytes | None


INCARNATION_ID_BYTES = 16


@dataclass(frozen=True, slots=True, order=True)
class Incarnation:
    """One life of a data directory: `ledger serve` makes generation 0 when it creates
    the directory; each `ledger recover` makes a new one, one generation up."""

    generation: int
    id: bytes  # INCARNATION_ID_BYTES random bytes

    @classmethod
    def new(cls, generation: int) -> Incarnation:
        return cls(generation, os.urandom(INCARNATION_ID_BYTES))

    def __str__(self) -> str:
        return f"{self.generation}:{self.id.hex()[:12]}"


@dataclass(frozen=True, slots=True)
class NodeIdentity:
    """Who this data directory belongs to, and where it stands in its life.

    The identity proper is the node id and the member ids; addresses are kept for
    the operator's information (a node may move). A restart under another node id
    or another set of members is refused.
    """

    node_id: str
    cluster: tuple[tuple[str, str], ...]  # (node id, address), sorted by id
    incarnation: Incarnation | None = None
    # A new directory votes only after every other member said it holds no record
    # of this node id (so a wiped member is never taken for a new one).
    join_pending: bool = False
    # Why this directory must go through `ledger recover` before it serves (a backup,
    # an interrupted recovery, damage); None when it may serve.
    recovery_required: str | None = None

    @property
    def member_ids(self) -> tuple[str, ...]:
        return tuple(node for node, _ in self.cluster)


@dataclass(frozen=True, slots=True)
class PeerRecord:
    """What this node holds about another member: the incarnation it counts messages
    from, and the highest durable commit count it saw from it."""

    incarnation: Incarnation
    durable_seq: int


@dataclass(frozen=True, slots=True)
class RecoveryTail:
    """How far an account's log reaches on this node: the answer a rejoining node fences by."""

    account: str
    chosen_through: int
    highest_slot: int  # highest slot holding a vote, a chosen value or a fence (-1: none)


@dataclass(frozen=True, slots=True)
class AccountSummary:
    """An account's chosen prefix as this node holds it."""

    account: str
    chosen_through: int  # -1: nothing chosen
    digest: bytes  # chain_digest over the chosen values 0..chosen_through


class UnknownTable(ValueError):
    """An application table the store was not opened with; nothing was written."""


class BrokenInvariant(InvariantViolation):
    """A write that would break the store's invariants: a bug in the caller; refused.

    The invariants: a promise only rises; a vote is not below the account's
    promise, nor on a decided slot; chosen values extend the chosen prefix in
    order; the reserved round never goes down (and, for a store with a background
    writer, one flush runs at a time). Every backend raises this explicitly rather
    than with ``assert``, which ``python -O`` strips: the check guards what reaches
    the disk. It is an AssertionError so that code treating a failed assertion as
    a bug (tests, the simulator) treats this one the same way.
    """


def check_app_tables(tables: Iterable[str]) -> tuple[str, ...]:
    """The declared application table names, sorted; raises ValueError for a bad one."""
    names = tuple(sorted(set(tables)))
    for name in names:
        if not APP_TABLE_NAME.fullmatch(name):
            raise ValueError(f"application table name {name!r} must be 1-32 of [a-z0-9_]")
    return names


class StorageError(Exception):
    """The store cannot do what was asked (full disk, corrupt data); the message says why."""


class StoreFailed(Exception):
    """A commit failed in a way nobody foresaw (not a full disk): what it held may be lost.

    Not a StorageError on purpose: nothing retries it. Memory now holds writes the
    disk may not, so the store commits nothing more and the node must stop; a
    restart from the data directory is the only safe way on.
    """


class StorageFull(StorageError):
    """The disk or the configured map size is exhausted; nothing staged was lost."""


class Corruption(StorageError):
    """A stored record failed its checksum (or is missing where the format says it must be).

    `account` names the account whose Paxos record it is, when it is one: that account
    is quarantined on this node (the rest keep serving). `slot` names a damaged chosen
    value, which is fetched again from a peer (`ChosenRepair`); any other damaged
    record waits for `ledger recover`.
    """

    def __init__(self, message: str, account: str | None = None,
                 slot: int | None = None) -> None:
        super().__init__(message)
        self.account = account
        self.slot = slot


@dataclass(frozen=True, slots=True)
class ChosenRepair:
    """Put back the chosen value at `slot` (inside the chosen prefix) whose record was
    damaged, as a peer holds it: a chosen value is final, so every replica's is the same."""

    account: str
    slot: int
    value: bytes


def flush_now(sync: Callable[[], None]) -> concurrent.futures.Future[None]:
    """`flush_async` for a store without a background writer: sync now, report in a future."""
    future: concurrent.futures.Future[None] = concurrent.futures.Future()
    try:
        sync()
    except StorageError as error:
        future.set_exception(error)
    else:
        future.set_result(None)
    return future


class Store(DurableView, Protocol):
    """A node's durable state. Not thread-safe: one writer (the node's event loop)."""

    def stage(self, writes: Iterable[Write | AppWrite | ChosenRepair]) -> None:
        """Apply writes so reads see them; durable only after the next `sync`.

        May raise StorageError (StorageFull): the writes then stay staged and the
        next `sync` retries them; nothing staged is ever silently dropped.
        """
        ...

    def sync(self) -> None:
        """Make every staged write durable in one commit. May raise StorageFull."""
        ...

    def flush_async(self) -> concurrent.futures.Future[None]:
        """Make everything staged so far durable, in the background; one at a time.

        The future fails with StorageError if it could not; the writes stay staged.
        """
        ...

    def close(self) -> None:
        """Commit what is staged, then close."""
        ...

    def abandon(self) -> None:
        """Close without committing what is staged, as a crash would leave the disk."""
        ...

    @property
    def app_tables(self) -> tuple[str, ...]:
        """The application tables the store was opened with, sorted."""
        ...

    def identity(self) -> NodeIdentity | None:
        """The identity recorded by `set_identity`, or None for a new data directory."""
        ...

    def set_identity(self, identity: NodeIdentity) -> None:
        """Record the identity durably (at once, with anything staged)."""
        ...

    def peer_records(self) -> dict[str, PeerRecord]:
        """What this node recorded about each other member, by node id."""
        ...

    def set_peer_records(self, records: dict[str, PeerRecord], wait: bool = True) -> None:
        """Replace the peer records durably (at once, with anything staged); without
        `wait` the store may commit them in the background."""
        ...

    def durable_seq(self) -> int:
        """How many commits this data directory has made: every state a message of this
        node vouches for is durable at or below the count when it leaves."""
        ...

    def max_promised_round(self) -> int:
        """The highest round this node promised (or accepted, which promises) on any account."""
        ...

    def recovery_tails(self, after: str, limit: int) -> Sequence[RecoveryTail]:
        """Accounts with a promise, a vote or a chosen value, sorted strictly after `after`."""
        ...

    def account_summary(self, account: str) -> AccountSummary: ...

    def account_summaries(self, after: str, limit: int) -> Sequence[AccountSummary]:
        """Accounts with a chosen value, sorted, strictly after `after`."""
        ...

    def app_get(self, table: str, key: bytes) -> bytes | None: ...

    def app_get_many(self, table: str, keys: Sequence[bytes]) -> list[bytes | None]:
        """`app_get` of each key, in one go (one transaction, no per-key overhead)."""
        ...

    def app_range(
        self, table: str, start: bytes, stop: bytes, limit: int
    ) -> Sequence[tuple[bytes, bytes]]:
        """Entries with start <= key < stop, sorted by key, at most `limit`."""
        ...
