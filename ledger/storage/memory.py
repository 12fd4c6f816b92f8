"""An in-memory store with the same staging and sync semantics as the durable one.

Writes are staged (visible to reads at once) and become durable at `sync`; a
`crash` drops everything staged but not synced. The simulator relies on this to
model a node that loses its unsynced writes when it dies.
"""

from __future__ import annotations

import bisect
import concurrent.futures
import copy
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from ledger.paxos.ballot import NULL_BALLOT, Ballot
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
    EMPTY_DIGEST,
    AccountSummary,
    AppWrite,
    BrokenInvariant,
    ChosenRepair,
    NodeIdentity,
    PeerRecord,
    RecoveryTail,
    UnknownTable,
    chain_digest,
    check_app_tables,
    flush_now,
)


@dataclass(slots=True)
class MemoryTables:
    """One consistent image of a node's state; reads implement `DurableView`."""

    round_reserved: int = 0
    promised: dict[str, Ballot] = field(default_factory=dict)
    votes: dict[str, dict[int, AcceptedEntry]] = field(default_factory=dict)
    chosen: dict[str, list[bytes]] = field(default_factory=dict)
    sorted_accounts: list[str] = field(default_factory=list)  # accounts with a chosen value
    digests: dict[str, bytes] = field(default_factory=dict)
    app: dict[str, dict[bytes, bytes]] = field(default_factory=dict)  # declared tables
    floor: int = 0  # see FloorWrite
    fences: dict[str, int] = field(default_factory=dict)  # see FenceWrite
    max_promised: int = 0  # highest round promised on any account
    commits: int = 0  # syncs that committed something
    identity: NodeIdentity | None = None
    peers: dict[str, PeerRecord] = field(default_factory=dict)

    def table(self, name: str) -> dict[bytes, bytes]:
        rows = self.app.get(name)
        if rows is None:
            raise UnknownTable(f"no application table {name!r} (declared: {sorted(self.app)})")
        return rows

    def apply(self, write: Write | AppWrite | ChosenRepair) -> None:
        """Apply one write; `BrokenInvariant` (before any change) if it breaks an invariant."""
        if isinstance(write, ChosenRepair):
            log = self.chosen.get(write.account, [])
            if write.slot >= len(log):
                raise BrokenInvariant("a repair outside the chosen prefix")
            log[write.slot] = write.value
        elif isinstance(write, AppWrite):
            if write.value is None:
                self.table(write.table).pop(write.key, None)
            else:
                self.table(write.table)[write.key] = write.value
        elif isinstance(write, PromiseWrite):
            promised = self.promised.get(write.account, NULL_BALLOT)
            if not write.ballot > promised:
                raise BrokenInvariant(f"promise {write.ballot} does not rise above {promised}")
            self.promised[write.account] = write.ballot
            self.max_promised = max(self.max_promised, write.ballot.round)
        elif isinstance(write, AcceptWrite):
            promised = self.promised.get(write.account, NULL_BALLOT)
            if write.ballot < promised:
                raise BrokenInvariant(f"a vote under {write.ballot} below the promise {promised}")
            if write.slot < len(self.chosen.get(write.account, ())):
                raise BrokenInvariant("a vote on a decided slot")
            vote = AcceptedEntry(write.slot, write.ballot, write.value)
            self.votes.setdefault(write.account, {})[write.slot] = vote
        elif isinstance(write, ChosenWrite):
            log = self.chosen.get(write.account)
            if write.slot != (0 if log is None else len(log)):
                raise BrokenInvariant("chosen values extend the prefix in order")
            if log is None:
                log = self.chosen[write.account] = []
                bisect.insort(self.sorted_accounts, write.account)
            log.append(write.value)
            self.digests[write.account] = chain_digest(
                self.digests.get(write.account, EMPTY_DIGEST), write.value
            )
            account_votes = self.votes.get(write.account)
            if account_votes is not None:
                account_votes.pop(write.slot, None)
                if not account_votes:
                    del self.votes[write.account]
        elif isinstance(write, RoundWrite):
            if write.reserved_round < self.round_reserved:
                raise BrokenInvariant("the reserved round may never go down")
            self.round_reserved = write.reserved_round
        elif isinstance(write, FenceWrite):
            self.fences[write.account] = max(self.fences.get(write.account, -1), write.slot)
        else:
            assert isinstance(write, FloorWrite)
            self.floor = max(self.floor, write.round)

    # DurableView

    def reserved_round(self) -> int:
        return self.round_reserved

    def round_floor(self) -> int:
        return self.floor

    def recovery_tails(self, after: str, limit: int) -> Sequence[RecoveryTail]:
        accounts = sorted(a for a in {*self.promised, *self.chosen, *self.votes, *self.fences}
                          if a > after)
        tails = []
        for account in accounts[:limit]:
            through = len(self.chosen.get(account, ())) - 1
            highest = max(through, max(self.votes.get(account, {}), default=-1),
                          self.fences.get(account, -1))
            tails.append(RecoveryTail(account, through, highest))
        return tails

    def account_record(self, account: str) -> AccountRecord:
        chosen_through = len(self.chosen.get(account, ())) - 1
        votes = tuple(
            vote for slot, vote in sorted(self.votes.get(account, {}).items())
            if slot > chosen_through
        )
        return AccountRecord(self.promised.get(account, NULL_BALLOT), chosen_through, votes,
                             self.fences.get(account, -1))

    def chosen_values(self, account: str, from_slot: int, limit: int) -> Sequence[bytes]:
        assert from_slot >= 0 and limit >= 0
        return self.chosen.get(account, [])[from_slot:from_slot + limit]

    def account_tails(self, after: str, limit: int) -> Sequence[AccountTail]:
        start = bisect.bisect_right(self.sorted_accounts, after)
        return [
            AccountTail(account, len(self.chosen[account]) - 1)
            for account in self.sorted_accounts[start:start + limit]
        ]

    def accounts_with_votes(self) -> Sequence[str]:
        return sorted(self.votes)

    def account_summary(self, account: str) -> AccountSummary:
        return AccountSummary(account, len(self.chosen.get(account, ())) - 1,
                              self.digests.get(account, EMPTY_DIGEST))

    def account_summaries(self, after: str, limit: int) -> Sequence[AccountSummary]:
        start = bisect.bisect_right(self.sorted_accounts, after)
        return [self.account_summary(a) for a in self.sorted_accounts[start:start + limit]]

    def app_get(self, table: str, key: bytes) -> bytes | None:
        return self.table(table).get(key)

    def app_range(
        self, table: str, start: bytes, stop: bytes, limit: int
    ) -> Sequence[tuple[bytes, bytes]]:
        rows = self.table(table)
        keys = sorted(key for key in rows if start <= key < stop)[:limit]
        return [(key, rows[key]) for key in keys]


class MemoryStore:
    """A node's store held in memory: staged writes are visible, synced ones survive `crash`."""

    def __init__(self, app_tables: Iterable[str] = ()) -> None:
        tables = check_app_tables(app_tables)
        self._app_tables = tables
        self._visible = MemoryTables(app={table: {} for table in tables})
        self._synced = MemoryTables(app={table: {} for table in tables})
        self._staged: list[Write | AppWrite | ChosenRepair] = []

    @property
    def app_tables(self) -> tuple[str, ...]:
        """The application tables the store was opened with, sorted."""
        return self._app_tables

    @property
    def synced(self) -> MemoryTables:
        """The durable image: what a restart would find."""
        return self._synced

    def stage(self, writes: Iterable[Write | AppWrite | ChosenRepair]) -> None:
        for write in writes:
            self._visible.apply(write)
            self._staged.append(write)

    def sync(self) -> None:
        if not self._staged:
            return
        for write in self._staged:
            self._synced.apply(write)
        self._staged.clear()
        self._synced.commits += 1
        self._visible.commits = self._synced.commits

    def durable_seq(self) -> int:
        return self._synced.commits

    def restore(self, image: MemoryTables) -> None:
        """Put an earlier durable image back (a restored backup or disk snapshot): the
        simulator's rollback. Everything staged is lost, as in a crash."""
        self._staged.clear()
        self._synced = copy.deepcopy(image)
        self._visible = copy.deepcopy(image)

    def flush_async(self) -> concurrent.futures.Future[None]:
        """Synchronously, in memory; the future is done (or failed) on return."""
        return flush_now(self.sync)

    def crash(self) -> None:
        """Lose every staged write, as a killed process would."""
        self._staged.clear()
        self._visible = copy.deepcopy(self._synced)

    # DurableView, over the visible image

    def reserved_round(self) -> int:
        return self._visible.reserved_round()

    def round_floor(self) -> int:
        return self._visible.round_floor()

    def max_promised_round(self) -> int:
        return self._visible.max_promised

    def recovery_tails(self, after: str, limit: int) -> Sequence[RecoveryTail]:
        return self._visible.recovery_tails(after, limit)

    def account_record(self, account: str) -> AccountRecord:
        return self._visible.account_record(account)

    def chosen_values(self, account: str, from_slot: int, limit: int) -> Sequence[bytes]:
        return self._visible.chosen_values(account, from_slot, limit)

    def account_tails(self, after: str, limit: int) -> Sequence[AccountTail]:
        return self._visible.account_tails(after, limit)

    def accounts_with_votes(self) -> Sequence[str]:
        return self._visible.accounts_with_votes()

    # Store

    def close(self) -> None:
        self.sync()

    def abandon(self) -> None:
        self.crash()

    def identity(self) -> NodeIdentity | None:
        return self._synced.identity

    def set_identity(self, identity: NodeIdentity) -> None:
        self.sync()
        self._synced.identity = self._visible.identity = identity

    def peer_records(self) -> dict[str, PeerRecord]:
        return dict(self._synced.peers)

    def set_peer_records(self, records: dict[str, PeerRecord], wait: bool = True) -> None:
        self.sync()
        self._synced.peers = dict(records)
        self._visible.peers = dict(records)

    def account_summary(self, account: str) -> AccountSummary:
        return self._visible.account_summary(account)

    def account_summaries(self, after: str, limit: int) -> Sequence[AccountSummary]:
        return self._visible.account_summaries(after, limit)

    def app_get(self, table: str, key: bytes) -> bytes | None:
        return self._visible.app_get(table, key)

    def app_get_many(self, table: str, keys: Sequence[bytes]) -> list[bytes | None]:
        return [self._visible.app_get(table, key) for key in keys]

    def app_range(
        self, table: str, start: bytes, stop: bytes, limit: int
    ) -> Sequence[tuple[bytes, bytes]]:
        return self._visible.app_range(table, start, stop, limit)
