"""What `ledger recover` keeps from a data directory it does not trust: chosen values only.

A chosen value is final, so one that passes its checksum, in a prefix whose chained
digest matches the account's recorded tail, is kept; promises, votes and rounds
never are (they may be older than what the node told its peers). An account
whose records do not verify keeps nothing, and catch-up fetches it again.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from ledger.paxos.records import ChosenWrite
from ledger.storage.base import EMPTY_DIGEST, NodeIdentity, StorageError, chain_digest
from ledger.storage.lmdb import LmdbStore

PAGE_ACCOUNTS = 1_000
PAGE_VALUES = 1_000


@dataclass(slots=True)
class Salvage:
    """What an old directory yielded: its identity (if readable) and what was dropped."""

    identity: NodeIdentity | None = None
    accounts_kept: int = 0
    values_kept: int = 0
    accounts_dropped: list[str] | None = None
    unreadable: str | None = None  # why the directory could not be read at all


def salvage_chosen(path: str, app_tables: tuple[str, ...], salvage: Salvage,
                   say: Callable[[str], None]) -> Iterator[list[ChosenWrite]]:
    """Yield batches of verified chosen values of the store at `path` (if it holds one)."""
    salvage.accounts_dropped = []
    if not os.path.exists(os.path.join(path, "data.mdb")):
        return
    try:
        store = LmdbStore(path, app_tables=app_tables)
    except StorageError as error:
        salvage.unreadable = str(error)
        say(f"the old data directory cannot be opened ({error}): keeping nothing from it")
        return
    try:
        try:
            salvage.identity = store.identity()
        except StorageError as error:
            salvage.unreadable = str(error)
        if salvage.identity is None:
            # Whose values are these? Another cluster's would be wrong here: keep nothing.
            say("the old directory's identity cannot be read: keeping nothing from it")
            return
        after = ""
        while True:
            try:
                summaries = store.account_summaries(after, PAGE_ACCOUNTS)
            except StorageError as error:
                salvage.unreadable = str(error)
                say(f"the account list of the old directory is damaged ({error}): keeping "
                    f"what was read so far")
                return
            for summary in summaries:
                writes = _verified(store, summary.account, summary.chosen_through,
                                   summary.digest)
                if writes is None:
                    salvage.accounts_dropped.append(summary.account)
                    continue
                salvage.accounts_kept += 1
                salvage.values_kept += len(writes)
                yield writes
            if len(summaries) < PAGE_ACCOUNTS:
                return
            after = summaries[-1].account
    finally:
        store.abandon()  # read only: nothing staged, nothing to commit


def _verified(store: LmdbStore, account: str, chosen_through: int,
              digest: bytes) -> list[ChosenWrite] | None:
    """The account's chosen values, if every one passes its checksum and together they
    give the digest its tail records; None otherwise."""
    writes: list[ChosenWrite] = []
    running = EMPTY_DIGEST
    try:
        while len(writes) <= chosen_through:
            page = store.chosen_values(account, len(writes), PAGE_VALUES)
            if not page:
                return None
            for value in page:
                writes.append(ChosenWrite(account, len(writes), value))
                running = chain_digest(running, value)
    except StorageError:
        return None
    if len(writes) != chosen_through + 1 or running != digest:
        return None
    return writes
