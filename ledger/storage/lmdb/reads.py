"""The reads of an `LmdbStore`: Paxos state and application tables, each record checked.

Every read borrows its transaction from `StagedWrites.begin_read` (the write
transaction on the writing thread, so staged writes are visible; a cached read
transaction on any other; see `read_transactions`) and hands it back to
`end_read` in a ``finally``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from ledger.paxos.messages import AcceptedEntry, AccountTail
from ledger.paxos.records import AccountRecord
from ledger.storage.base import AccountSummary, Corruption, RecoveryTail
from ledger.storage.lmdb.environment import Tables
from ledger.storage.lmdb.records import META_FLOOR, META_MAX_PROMISED, META_ROUND, U64, Records
from ledger.storage.lmdb.staging import StagedWrites
from ledger.storage.lmdb.writes import read_meta_u64

#: `U64` under a name this module assigns: CPython 3.11 compiles ``name.method()``
#: on an imported name as an attribute load that builds a bound method on every
#: call (about 40 ns), and these calls run for every record read.
_U64: Final = U64


class LmdbReads:
    """The `DurableView` and application-table reads, for `LmdbStore` to inherit.

    A base class rather than an object the store calls into, so that a read costs
    one method call, as it did before the store was split up. The store sets the
    attributes below before the first read.
    """

    _path: str
    _records: Records
    _tables: Tables
    _writes: StagedWrites

    # The Paxos state

    def reserved_round(self) -> int:
        txn = self._writes.begin_read()
        try:
            raw = txn.get(META_ROUND, db=self._tables.meta)
            if raw is None:
                return 0
            return int(_U64.unpack(self._records.checked(META_ROUND, raw, "the reserved round"))[0])
        finally:
            self._writes.end_read(txn)

    def _meta_u64(self, key: bytes) -> int:
        txn = self._writes.begin_read()
        try:
            return read_meta_u64(txn, self._records, self._tables, key)
        finally:
            self._writes.end_read(txn)

    def round_floor(self) -> int:
        return self._meta_u64(META_FLOOR)

    def max_promised_round(self) -> int:
        return self._meta_u64(META_MAX_PROMISED)

    def durable_seq(self) -> int:
        return self._writes.commits

    def recovery_tails(self, after: str, limit: int) -> Sequence[RecoveryTail]:
        # Every account with a vote has a promise (a vote raises it); one with only
        # chosen values (learned) has a tail; a recovered node's fence counts as a vote
        # it may have lost. So the accounts are the union of the three.
        tails: list[RecoveryTail] = []
        if limit <= 0:
            return tails
        seek = after.encode() + b"\x01"
        tables = self._tables
        txn = self._writes.begin_read()
        try:
            accounts: set[bytes] = set()
            for db in (tables.promise, tables.tail, tables.fence):
                cursor = txn.cursor(db=db)
                if cursor.set_range(seek):
                    # The first `limit` of the union are among the first `limit` of each.
                    for count, key in enumerate(cursor.iternext(values=False), 1):
                        accounts.add(key)
                        if count == limit:
                            break
        finally:
            self._writes.end_read(txn)
        for key in sorted(accounts)[:limit]:
            account = key[:-1].decode()
            record = self.account_record(account)
            highest = max(record.chosen_through, record.fence_slot,
                          max((v.slot for v in record.accepted), default=-1))
            tails.append(RecoveryTail(account, record.chosen_through, highest))
        return tails

    def account_record(self, account: str) -> AccountRecord:
        records, tables = self._records, self._tables
        prefix = records.account_key(account)
        txn = self._writes.begin_read()
        try:
            promised = records.decode_promise(txn.get(prefix, db=tables.promise), prefix, account)
            raw_fence = txn.get(prefix, db=tables.fence)
            fence = -1 if raw_fence is None else _U64.unpack(records.checked(
                prefix, raw_fence, "the recovery fence of account %r", account,
                account=account))[0]
            through = records.decode_tail(txn.get(prefix, db=tables.tail), prefix, account)[0]
            votes: list[AcceptedEntry] = []
            cursor = txn.cursor(db=tables.vote)
            if cursor.set_range(prefix + _U64.pack(through + 1)):
                start = len(prefix)
                for key, raw in cursor:
                    if not key.startswith(prefix):
                        break
                    slot = _U64.unpack_from(key, start)[0]
                    votes.append(records.vote_entry(key, raw, account, slot))
            return AccountRecord(promised, through, tuple(votes), fence)
        finally:
            self._writes.end_read(txn)

    def chosen_values(self, account: str, from_slot: int, limit: int) -> Sequence[bytes]:
        assert from_slot >= 0 and limit >= 0
        records = self._records
        prefix = records.account_key(account)
        values: list[bytes] = []
        if limit == 0:
            return values
        txn = self._writes.begin_read()
        try:
            cursor = txn.cursor(db=self._tables.chosen)
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
                        f"{self._path} skip slot {expected}: the data on disk is damaged; "
                        f"run `ledger recover` on this node (see README, 'Losing a disk')",
                        account)
                values.append(records.checked(
                    key, raw, "the chosen value of account %r at slot %d", account, expected,
                    account=account, slot=expected))
                expected += 1
                if len(values) == limit:
                    break
            return values
        finally:
            self._writes.end_read(txn)

    def _tails_after(self, after: str, limit: int) -> list[tuple[str, int, bytes]]:
        rows: list[tuple[str, int, bytes]] = []
        if limit <= 0:
            return rows
        # The first key at or above `after` + "\x01" belongs to the first account
        # strictly after `after` (accounts hold no NUL, and their keys end in NUL).
        seek = after.encode() + b"\x01"
        decode_tail = self._records.decode_tail
        txn = self._writes.begin_read()
        try:
            cursor = txn.cursor(db=self._tables.tail)
            if not cursor.set_range(seek):
                return rows
            for key, raw in cursor:
                account = key[:-1].decode()
                through, digest = decode_tail(raw, key, account)
                rows.append((account, through, digest))
                if len(rows) == limit:
                    break
            return rows
        finally:
            self._writes.end_read(txn)

    def account_tails(self, after: str, limit: int) -> Sequence[AccountTail]:
        return [AccountTail(account, through) for account, through, _ in
                self._tails_after(after, limit)]

    def accounts_with_votes(self) -> Sequence[str]:
        # The vote table holds only undecided votes (ChosenWrite deletes the vote it
        # decides), so every account with a row qualifies. Hop from account to
        # account instead of reading every vote.
        accounts: list[str] = []
        txn = self._writes.begin_read()
        try:
            cursor = txn.cursor(db=self._tables.vote)
            found = cursor.first()
            while found:
                key = cursor.key()
                raw_account = key[:key.index(b"\x00")]
                accounts.append(raw_account.decode())
                found = cursor.set_range(raw_account + b"\x01")
            return accounts
        finally:
            self._writes.end_read(txn)

    def account_summary(self, account: str) -> AccountSummary:
        records = self._records
        prefix = records.account_key(account)
        txn = self._writes.begin_read()
        try:
            through, digest = records.decode_tail(
                txn.get(prefix, db=self._tables.tail), prefix, account)
            return AccountSummary(account, through, digest)
        finally:
            self._writes.end_read(txn)

    def account_summaries(self, after: str, limit: int) -> Sequence[AccountSummary]:
        return [AccountSummary(account, through, digest) for account, through, digest in
                self._tails_after(after, limit)]

    # Reads of the application tables

    def app_get(self, table: str, key: bytes) -> bytes | None:
        db = self._tables.app_db(table)
        if not key:
            return None
        txn = self._writes.begin_read()
        try:
            raw = txn.get(key, db=db)
            if raw is None:
                return None
            return self._records.checked(key, raw, "the %s entry %r", table, key)
        finally:
            self._writes.end_read(txn)

    def app_get_many(self, table: str, keys: Sequence[bytes]) -> list[bytes | None]:
        db = self._tables.app_db(table)
        wanted = sorted({key for key in keys if key})
        if not wanted:
            return [None] * len(keys)
        txn = self._writes.begin_read()
        try:
            # One call into LMDB for all of them: each separate get would let the
            # writer thread take the GIL in between.
            found = dict(txn.cursor(db=db).getmulti(wanted))
        finally:
            self._writes.end_read(txn)
        checked = self._records.checked
        values: list[bytes | None] = []
        for key in keys:
            raw = found.get(key)
            values.append(None if raw is None else
                          checked(key, raw, "the %s entry %r", table, key))
        return values

    def app_range(
        self, table: str, start: bytes, stop: bytes, limit: int
    ) -> Sequence[tuple[bytes, bytes]]:
        db = self._tables.app_db(table)
        rows: list[tuple[bytes, bytes]] = []
        if limit <= 0 or start >= stop:
            return rows
        checked = self._records.checked
        txn = self._writes.begin_read()
        try:
            cursor = txn.cursor(db=db)
            found = cursor.set_range(start) if start else cursor.first()
            if not found:
                return rows
            for key, raw in cursor:
                if key >= stop:
                    break
                rows.append((key, checked(key, raw, "the %s entry %r", table, key)))
                if len(rows) == limit:
                    break
            return rows
        finally:
            self._writes.end_read(txn)
