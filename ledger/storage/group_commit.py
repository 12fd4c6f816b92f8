"""Group commit with a background writer: the event loop never waits for the disk.

`GroupCommitStore` wraps a durable store (LMDB). Writes are staged into an
in-memory overlay that every read consults first, so the core sees its own
writes at once; `flush_async` hands everything staged so far to a single writer
thread, which commits it in one transaction with one sync while the event loop
keeps serving. When the commit is durable, the overlay entries it covered are
dropped (reads then find them in the base). A crash loses exactly the overlay.

Thread model: `stage`, reads and `flush_async` are called from one thread (the
node's event loop); the writer thread only calls the base's `stage` and `sync`.
The base must allow reads from the loop thread while the writer commits (LMDB
read transactions do). A lock makes a read see the overlay and the base as one
state: pruning, which follows a commit, takes the same lock.
"""

from __future__ import annotations

import bisect
import concurrent.futures
import contextlib
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from ledger.paxos.ballot import Ballot
from ledger.paxos.messages import AcceptedEntry, AccountTail
from ledger.paxos.records import (
    AcceptWrite,
    AccountRecord,
    ChosenWrite,
    FenceWrite,
    FloorWrite,
    PromiseWrite,
    RoundWrite,
    Write,
)
from ledger.storage.base import (
    AccountSummary,
    AppWrite,
    BrokenInvariant,
    ChosenRepair,
    NodeIdentity,
    PeerRecord,
    RecoveryTail,
    StorageError,
    Store,
    StoreFailed,
    UnknownTable,
    chain_digest,
)

_TOMBSTONE = None  # an app value staged for deletion


@dataclass
class _AccountOverlay:
    """Staged state of one account; each item remembers the batch that wrote it last."""

    promised: tuple[Ballot, int] | None = None
    votes: dict[int, tuple[AcceptedEntry, int]] = field(default_factory=dict)
    chosen: dict[int, tuple[bytes, int]] = field(default_factory=dict)
    tail: tuple[int, bytes, int] | None = None  # chosen_through, digest, batch

    def empty(self) -> bool:
        return self.promised is None and not self.votes and not self.chosen and self.tail is None


class GroupCommitStore:
    """A Store whose syncs run on a writer thread, in the background."""

    def __init__(self, base: Store) -> None:
        self._base = base
        self._lock = threading.Lock()
        if hasattr(base, "readers_lock"):
            base.readers_lock = self._lock  # an LMDB map resize waits for our readers
        self._accounts: dict[str, _AccountOverlay] = {}
        self._round: tuple[int, int] | None = None
        # Staged application rows, by table; only the base's declared tables exist.
        self._app: dict[str, dict[bytes, tuple[bytes | None, int]]] = {
            table: {} for table in base.app_tables
        }
        # Sorted keys of _app[table], built when a range read needs them: staging (the
        # hot path) only drops the list when it adds a key.
        self._app_keys: dict[str, list[bytes]] = {}
        self._pending: list[Write | AppWrite | ChosenRepair] = []
        self._batch = 1  # the batch now being staged into
        self._writer = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="writer")
        self._in_flight: concurrent.futures.Future[None] | None = None
        # A commit failed unforeseen (not a full disk): its batch may be lost, so no
        # later commit may pretend to follow it.
        self._failure: StoreFailed | None = None

    # ------------------------------------------------------------------ writes

    def stage(self, writes: Iterable[Write | AppWrite | ChosenRepair]) -> None:
        with self._lock:
            for write in writes:
                self._stage_one(write)
                self._pending.append(write)

    def _stage_one(self, write: Write | AppWrite | ChosenRepair) -> None:
        batch = self._batch
        if isinstance(write, ChosenRepair):
            return  # no overlay: reads see it once committed (the caller syncs at once)
        if isinstance(write, AppWrite):
            rows = self._app.get(write.table)
            if rows is None:
                # Refused here: the writer thread would refuse it too, long after the
                # caller has acted on it.
                raise UnknownTable(f"no application table {write.table!r} "
                                   f"(declared: {sorted(self._app)})")
            if write.key not in rows:
                self._app_keys.pop(write.table, None)
            rows[write.key] = (write.value, batch)
            return
        if isinstance(write, (FenceWrite, FloorWrite)):
            raise TypeError(f"{write!r}: recovery fences are written by `ledger recover` on "
                            "a stopped node, not through a running node's group commit")
        if isinstance(write, RoundWrite):
            current = self._round[0] if self._round is not None else self._base.reserved_round()
            if write.reserved_round < current:
                raise BrokenInvariant("the reserved round may never go down")
            self._round = (write.reserved_round, batch)
            return
        account = write.account
        overlay = self._accounts.setdefault(account, _AccountOverlay())
        if isinstance(write, PromiseWrite):
            promised = self._promised(account, overlay)
            if not write.ballot > promised:
                raise BrokenInvariant(f"promise {write.ballot} does not rise above {promised}")
            overlay.promised = (write.ballot, batch)
        elif isinstance(write, AcceptWrite):
            promised = self._promised(account, overlay)
            if write.ballot < promised:
                raise BrokenInvariant(f"a vote under {write.ballot} below the promise {promised}")
            chosen_through, _ = self._tail(account, overlay)
            if write.slot <= chosen_through:
                raise BrokenInvariant("a vote on a decided slot")
            vote = AcceptedEntry(write.slot, write.ballot, write.value)
            overlay.votes[write.slot] = (vote, batch)
        else:
            assert isinstance(write, ChosenWrite)
            chosen_through, digest = self._tail(account, overlay)
            if write.slot != chosen_through + 1:
                raise BrokenInvariant("chosen values extend the prefix in order")
            overlay.chosen[write.slot] = (write.value, batch)
            overlay.votes.pop(write.slot, None)
            overlay.tail = (write.slot, chain_digest(digest, write.value), batch)

    def flush_async(self) -> concurrent.futures.Future[None]:
        """Commit everything staged so far, on the writer thread; one sync at a time.

        Raises StoreFailed once a commit has failed unforeseen: nothing more is committed.
        """
        if self._failure is not None:
            raise self._failure
        if self._in_flight is not None and not self._in_flight.done():
            raise BrokenInvariant("one flush at a time: the previous one is still running")
        batch, self._pending = self._pending, []
        number = self._batch
        self._batch += 1
        self._in_flight = self._writer.submit(self._commit, batch, number)
        return self._in_flight

    def sync(self) -> None:
        """Commit everything staged so far and wait for it (startup, shutdown, and after a
        full disk: a failed flush's writes are still staged, and this retries them)."""
        if self._in_flight is not None:
            # Wait for it; a StorageError of its own was reported to whoever started it.
            with contextlib.suppress(StorageError):
                self._in_flight.result()
        self.flush_async().result()

    def _commit(self, batch: list[Write | AppWrite | ChosenRepair], number: int) -> None:
        """On the writer thread: make the batch durable, then let reads find it in the base.

        A StorageError (a full disk) leaves the batch staged in the base, and the next
        sync retries it. Anything else may have lost the batch: the store fails for good.
        """
        try:
            with contextlib.suppress(StorageError):
                # On failure the base keeps the batch staged; the sync below retries it.
                self._base.stage(batch)
            self._base.sync()
        except StorageError:
            raise
        except BaseException as error:
            self._failure = StoreFailed(
                f"committing batch {number} failed unexpectedly ({error!r}); nothing more is "
                "committed")
            raise self._failure from error
        with self._lock:
            self._prune(number)

    def _prune(self, number: int) -> None:
        """Drop overlay items written by batches <= `number` (now durable in the base)."""
        for account in list(self._accounts):
            overlay = self._accounts[account]
            if overlay.promised is not None and overlay.promised[1] <= number:
                overlay.promised = None
            overlay.votes = {p: v for p, v in overlay.votes.items() if v[1] > number}
            overlay.chosen = {p: v for p, v in overlay.chosen.items() if v[1] > number}
            if overlay.tail is not None and overlay.tail[2] <= number:
                overlay.tail = None
            if overlay.empty():
                del self._accounts[account]
        if self._round is not None and self._round[1] <= number:
            self._round = None
        for table, rows in self._app.items():
            stale = [key for key, (_, batch) in rows.items() if batch <= number]
            for key in stale:
                del rows[key]
            if stale:
                self._app_keys.pop(table, None)

    def close(self) -> None:
        """Commit what is staged and close; after a failed commit, close without committing."""
        if self._failure is not None:
            self.abandon()
            raise self._failure
        self.sync()
        self._writer.shutdown()
        self._base.close()

    def abandon(self) -> None:
        """Close without committing what is staged (the writer finishes what it holds)."""
        self._writer.shutdown()
        self._base.abandon()

    @property
    def app_tables(self) -> tuple[str, ...]:
        """The application tables the store was opened with, sorted."""
        return self._base.app_tables

    # ------------------------------------------------------------------- reads

    def _promised(self, account: str, overlay: _AccountOverlay) -> Ballot:
        if overlay.promised is not None:
            return overlay.promised[0]
        return self._base.account_record(account).promised

    def _tail(self, account: str, overlay: _AccountOverlay) -> tuple[int, bytes]:
        if overlay.tail is not None:
            return overlay.tail[0], overlay.tail[1]
        summary = self._base.account_summary(account)
        return summary.chosen_through, summary.digest

    def reserved_round(self) -> int:
        with self._lock:
            if self._round is not None:
                return self._round[0]
            return self._base.reserved_round()

    def account_record(self, account: str) -> AccountRecord:
        with self._lock:
            base = self._base.account_record(account)
            overlay = self._accounts.get(account)
            if overlay is None:
                return base
            promised = overlay.promised[0] if overlay.promised is not None else base.promised
            chosen_through = overlay.tail[0] if overlay.tail is not None else base.chosen_through
            votes = {vote.slot: vote for vote in base.accepted}
            votes.update((p, v) for p, (v, _) in overlay.votes.items())
            accepted = tuple(v for p, v in sorted(votes.items()) if p > chosen_through)
            return AccountRecord(max(promised, base.promised), chosen_through, accepted,
                                 base.fence_slot)

    def chosen_values(self, account: str, from_slot: int, limit: int) -> Sequence[bytes]:
        with self._lock:
            overlay = self._accounts.get(account)
            base = self._base.chosen_values(account, from_slot, limit)
            if overlay is None or not overlay.chosen:
                return base
            values = list(base)
            slot = from_slot + len(values)
            while len(values) < limit and slot in overlay.chosen:
                values.append(overlay.chosen[slot][0])
                slot += 1
            return values

    def account_summary(self, account: str) -> AccountSummary:
        with self._lock:
            overlay = self._accounts.get(account)
            if overlay is not None and overlay.tail is not None:
                return AccountSummary(account, overlay.tail[0], overlay.tail[1])
            return self._base.account_summary(account)

    def account_summaries(self, after: str, limit: int) -> Sequence[AccountSummary]:
        with self._lock:
            merged = {s.account: s for s in self._base.account_summaries(after, limit)}
            for account, overlay in self._accounts.items():
                if overlay.tail is not None and account > after:
                    merged[account] = AccountSummary(account, overlay.tail[0], overlay.tail[1])
            return [merged[a] for a in sorted(merged)[:limit]]

    def account_tails(self, after: str, limit: int) -> Sequence[AccountTail]:
        return [AccountTail(s.account, s.chosen_through)
                for s in self.account_summaries(after, limit)]

    def accounts_with_votes(self) -> Sequence[str]:
        with self._lock:
            accounts = set(self._base.accounts_with_votes())
            accounts.update(a for a, overlay in self._accounts.items() if overlay.votes)
            return sorted(a for a in accounts if self._has_vote_above_prefix(a))

    def _has_vote_above_prefix(self, account: str) -> bool:
        overlay = self._accounts.get(account)
        if overlay is None:
            return bool(self._base.account_record(account).accepted)
        if overlay.votes:
            return True
        chosen_through = overlay.tail[0] if overlay.tail is not None else (
            self._base.account_summary(account).chosen_through)
        return any(v.slot > chosen_through
                   for v in self._base.account_record(account).accepted)

    def app_get(self, table: str, key: bytes) -> bytes | None:
        with self._lock:
            staged = self._app.get(table, {}).get(key)
            if staged is not None:
                return staged[0]
            return self._base.app_get(table, key)

    def app_get_many(self, table: str, keys: Sequence[bytes]) -> list[bytes | None]:
        with self._lock:
            rows = self._app.get(table, {})
            values: list[bytes | None] = []
            missing: list[int] = []
            for index, key in enumerate(keys):
                staged = rows.get(key)
                values.append(None if staged is None else staged[0])
                if staged is None:
                    missing.append(index)
            if missing:
                from_base = self._base.app_get_many(table, [keys[i] for i in missing])
                for index, value in zip(missing, from_base, strict=True):
                    values[index] = value
            return values

    def app_range(
        self, table: str, start: bytes, stop: bytes, limit: int
    ) -> Sequence[tuple[bytes, bytes]]:
        with self._lock:
            rows = self._app.get(table, {})
            keys = self._app_keys.get(table)
            if keys is None:
                keys = self._app_keys[table] = sorted(rows)
            staged = keys[bisect.bisect_left(keys, start):bisect.bisect_left(keys, stop)]
            # Staged deletions may hide base rows: ask the base for enough to make up.
            merged = dict(self._base.app_range(table, start, stop, limit + len(staged)))
            for key in staged:
                value = rows[key][0]
                if value is _TOMBSTONE:
                    merged.pop(key, None)
                else:
                    merged[key] = value
            return [(key, merged[key]) for key in sorted(merged)[:limit]]

    # ---------------------------------------------------------------- identity

    def identity(self) -> NodeIdentity | None:
        return self._base.identity()

    def set_identity(self, identity: NodeIdentity) -> None:
        self.sync()
        # On the writer thread: LMDB's write transaction belongs to one thread.
        self._writer.submit(self._base.set_identity, identity).result()

    def peer_records(self) -> dict[str, PeerRecord]:
        return self._base.peer_records()

    def set_peer_records(self, records: dict[str, PeerRecord], wait: bool = True) -> None:
        """Commit the peer records on the writer thread, after what is staged; without
        `wait`, in the background (a backup may hold the writer for a while)."""
        if self._failure is not None:
            raise self._failure
        done = self._writer.submit(self._commit_peer_records, dict(records))
        if wait:
            self.sync()
            done.result()

    def _commit_peer_records(self, records: dict[str, PeerRecord]) -> None:
        """On the writer thread; nothing more once a commit failed unforeseen."""
        if self._failure is None:
            self._base.set_peer_records(records)

    # ------------------------------------------------- recovery (durable state only)

    def round_floor(self) -> int:
        return self._base.round_floor()

    def durable_seq(self) -> int:
        return self._base.durable_seq()

    def max_promised_round(self) -> int:
        # What was promised but is still staged has not left this node: durable is enough.
        return self._base.max_promised_round()

    def recovery_tails(self, after: str, limit: int) -> Sequence[RecoveryTail]:
        with self._lock:
            return self._base.recovery_tails(after, limit)

    # ------------------------------------------------------------ a copy for backups

    def copy_to(self, path: str) -> None:
        """Copy the durable state into directory `path` (see `LmdbStore.copy_to`); blocks.

        The copy runs on the writer thread, the only one that grows the LMDB map: commits
        wait behind it while the loop keeps serving. What is staged but not committed is
        not in the copy: it holds exactly what a crash at that moment would leave.
        """
        copy_to = getattr(self._base, "copy_to", None)
        if copy_to is None:
            raise StorageError(f"a {type(self._base).__name__} cannot be copied")
        try:
            copying = self._writer.submit(copy_to, path)
        except RuntimeError as error:  # the writer was shut down: the store is closing
            raise StorageError("the store is closing; nothing was copied") from error
        copying.result()
