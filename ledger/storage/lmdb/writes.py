"""How each write lands in the tables of a write transaction, after its invariant check."""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import lmdb

from ledger.paxos.records import (
    AcceptWrite,
    ChosenWrite,
    FenceWrite,
    FloorWrite,
    PromiseWrite,
    RoundWrite,
    Write,
)
from ledger.storage.base import AppWrite, BrokenInvariant, ChosenRepair, chain_digest
from ledger.storage.lmdb.environment import Tables
from ledger.storage.lmdb.records import (
    BALLOT,
    CRC,
    META_FLOOR,
    META_MAX_PROMISED,
    META_ROUND,
    TAIL_BODY,
    U64,
    Records,
    seal,
)


@dataclass(frozen=True, slots=True)
class MetaWrite:
    """A store-internal write to ``meta``, staged like the others so a rebuild replays it."""

    key: bytes
    value: bytes


AnyWrite = Write | AppWrite | MetaWrite | ChosenRepair


def apply_writes(
    txn: lmdb.Transaction[bytes], writes: Sequence[AnyWrite], records: Records, tables: Tables
) -> None:
    """Apply writes in order, with MemoryTables.apply's semantics and checks.

    A write that breaks an invariant raises `BrokenInvariant`, one that no store
    could hold (a bad account, an empty application key) ValueError, and one
    naming an undeclared table `UnknownTable`, all before it changes anything;
    the writes before it in `writes` are applied, so the caller aborts the
    transaction to refuse the whole batch. LMDB errors propagate as they are.
    """
    # Locals: this loop runs once per write, thousands of times a second. The
    # record format (see `records`) is inlined for the same reason. (Locals also
    # spare CPython 3.11 from building a bound method at every ``CRC.pack(...)``,
    # as it does for a method of an imported name.)
    put = txn.put
    get = txn.get
    crc32 = zlib.crc32
    pack_crc = CRC.pack
    pack_u64 = U64.pack
    unpack_u64 = U64.unpack
    pack_ballot = BALLOT.pack
    pack_tail = TAIL_BODY.pack
    account_key = records.account_key
    decode_promise = records.decode_promise
    decode_tail = records.decode_tail
    promise_db, vote_db = tables.promise, tables.vote
    chosen_db, tail_db = tables.chosen, tables.tail
    for write in writes:
        kind = type(write)
        if kind is AcceptWrite:
            assert isinstance(write, AcceptWrite)  # for the type checker; `kind` said so
            account = write.account
            prefix = account_key(account)
            ballot = write.ballot
            promised = decode_promise(get(prefix, db=promise_db), prefix, account)
            if ballot < promised:
                raise BrokenInvariant(f"a vote under {ballot} below the promise {promised}")
            if write.slot <= decode_tail(get(prefix, db=tail_db), prefix, account)[0]:
                raise BrokenInvariant("a vote on a decided slot")
            key = prefix + pack_u64(write.slot)
            body = pack_ballot(ballot.round, ballot.node_index) + write.value
            put(key, pack_crc(crc32(body, crc32(key))) + body, db=vote_db)
        elif kind is ChosenWrite:
            assert isinstance(write, ChosenWrite)
            account = write.account
            prefix = account_key(account)
            through, digest = decode_tail(get(prefix, db=tail_db), prefix, account)
            if write.slot != through + 1:
                raise BrokenInvariant("chosen values extend the prefix in order")
            key = prefix + pack_u64(write.slot)
            value = write.value
            put(key, pack_crc(crc32(value, crc32(key))) + value, db=chosen_db)
            tail = pack_tail(write.slot, chain_digest(digest, value))
            put(prefix, pack_crc(crc32(tail, crc32(prefix))) + tail, db=tail_db)
            # The chosen value supersedes the vote: the vote table keeps only
            # undecided votes, which accounts_with_votes relies on.
            txn.delete(key, db=vote_db)
        elif kind is AppWrite:
            assert isinstance(write, AppWrite)
            db = tables.app_db(write.table)
            if not write.key:
                raise ValueError("application keys must not be empty (LMDB refuses them)")
            if write.value is None:
                txn.delete(write.key, db=db)
            else:
                put(write.key, seal(write.key, write.value), db=db)
        elif kind is PromiseWrite:
            assert isinstance(write, PromiseWrite)
            account = write.account
            prefix = account_key(account)
            ballot = write.ballot
            promised = decode_promise(get(prefix, db=promise_db), prefix, account)
            if not ballot > promised:
                raise BrokenInvariant(f"promise {ballot} does not rise above {promised}")
            put(prefix, seal(prefix, pack_ballot(ballot.round, ballot.node_index)),
                db=promise_db)
            _raise_meta(txn, records, tables, META_MAX_PROMISED, ballot.round)
        elif kind is RoundWrite:
            assert isinstance(write, RoundWrite)
            raw = get(META_ROUND, db=tables.meta)
            if raw is not None and write.reserved_round < unpack_u64(
                records.checked(META_ROUND, raw, "the reserved round")
            )[0]:
                raise BrokenInvariant("the reserved round may never go down")
            put(META_ROUND, seal(META_ROUND, pack_u64(write.reserved_round)), db=tables.meta)
        elif kind is ChosenRepair:
            assert isinstance(write, ChosenRepair)
            prefix = account_key(write.account)
            if write.slot > decode_tail(get(prefix, db=tail_db), prefix, write.account)[0]:
                raise BrokenInvariant("a repair outside the chosen prefix")
            key = prefix + pack_u64(write.slot)
            put(key, seal(key, write.value), db=chosen_db)
        elif kind is FenceWrite:
            assert isinstance(write, FenceWrite)
            key = account_key(write.account)
            raw = get(key, db=tables.fence)
            if raw is None or unpack_u64(records.checked(
                    key, raw, "the recovery fence of account %r", write.account))[0] < write.slot:
                put(key, seal(key, pack_u64(write.slot)), db=tables.fence)
        elif kind is FloorWrite:
            assert isinstance(write, FloorWrite)
            _raise_meta(txn, records, tables, META_FLOOR, write.round)
        elif kind is MetaWrite:
            assert isinstance(write, MetaWrite)
            put(write.key, seal(write.key, write.value), db=tables.meta)
        else:
            raise TypeError(f"not a storage write: {write!r}")


def read_meta_u64(txn: lmdb.Transaction[bytes], records: Records, tables: Tables,
                  key: bytes) -> int:
    """A counter of the ``meta`` table (0 if it was never written)."""
    raw = txn.get(key, db=tables.meta)
    if raw is None:
        return 0
    return int(U64.unpack(records.checked(key, raw, "the %s record", key.decode()))[0])


def _raise_meta(txn: lmdb.Transaction[bytes], records: Records, tables: Tables, key: bytes,
                value: int) -> None:
    """Raise a ``meta`` counter to `value` (it never goes down)."""
    if read_meta_u64(txn, records, tables, key) < value:
        txn.put(key, seal(key, U64.pack(value)), db=tables.meta)
