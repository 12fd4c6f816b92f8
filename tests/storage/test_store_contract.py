"""The `Store` contract, one suite run against every backend (MemoryStore and LmdbStore).

What differs between backends, restarting and crashing, lives in the `Backend`
helpers below, so every test reads the same for both. A crash of an LmdbStore is
a real one: a child process opens the store, stages writes and dies with
`os._exit` before syncing.
"""

from __future__ import annotations

import pickle
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from ledger.paxos.ballot import NULL_BALLOT, Ballot
from ledger.paxos.messages import AcceptedEntry, AccountTail
from ledger.paxos.records import (
    AcceptWrite,
    AccountRecord,
    ChosenWrite,
    PromiseWrite,
    RoundWrite,
)
from ledger.storage.base import (
    EMPTY_DIGEST,
    AccountSummary,
    AppWrite,
    BrokenInvariant,
    NodeIdentity,
    Store,
    UnknownTable,
    chain_digest,
)
from ledger.storage.group_commit import GroupCommitStore
from ledger.storage.lmdb import LmdbStore
from ledger.storage.memory import MemoryStore
from tests.support.storage import APP_TABLES, StagedWrite

B1, B2, B3 = Ballot(1, 0), Ballot(2, 1), Ballot(3, 0)


# Run in a child process: open the store, stage the pickled writes, prove they are
# visible, then die without syncing, as a killed node would.
_CRASH_CHILD = """
import os, pickle, sys
from ledger.storage.lmdb import LmdbStore
writes = pickle.loads(sys.stdin.buffer.read())
store = LmdbStore(sys.argv[1], app_tables=("applied", "history", "requests"))
store.stage(writes)
store.reserved_round(), store.accounts_with_votes()  # reads through the staged transaction
sys.stdout.write("staged %d\\n" % len(writes))
sys.stdout.flush()
os._exit(0)
"""


class Backend:
    """How to open, restart and crash one kind of store."""

    name: str

    def open(self) -> Store:
        raise NotImplementedError

    def reopen(self, store: Store) -> Store:
        """A clean shutdown and restart: what `close` made durable is all there is."""
        raise NotImplementedError

    def crash_with_staged(self, store: Store, writes: Sequence[StagedWrite]) -> Store:
        """Stage `writes` (on top of whatever is staged), die before syncing, restart."""
        raise NotImplementedError

    def cleanup(self) -> None:
        pass


class MemoryBackend(Backend):
    name = "memory"

    def open(self) -> Store:
        return MemoryStore(APP_TABLES)

    def reopen(self, store: Store) -> Store:
        assert isinstance(store, MemoryStore)
        store.close()
        store.crash()  # a restart starts from the synced image
        return store

    def crash_with_staged(self, store: Store, writes: Sequence[StagedWrite]) -> Store:
        assert isinstance(store, MemoryStore)
        store.stage(writes)
        store.crash()
        return store


class LmdbBackend(Backend):
    name = "lmdb"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.stores: list[LmdbStore] = []

    def open(self) -> Store:
        store = LmdbStore(self.path, app_tables=APP_TABLES)
        self.stores.append(store)
        return store

    def reopen(self, store: Store) -> Store:
        store.close()
        return self.open()

    def crash_with_staged(self, store: Store, writes: Sequence[StagedWrite]) -> Store:
        assert isinstance(store, LmdbStore)
        store.abandon()  # this process's own staged writes die with it too
        child = subprocess.run(
            [sys.executable, "-c", _CRASH_CHILD, str(self.path)],
            input=pickle.dumps(list(writes)),
            capture_output=True,
            timeout=60,
        )
        assert child.returncode == 0, child.stderr.decode()
        assert child.stdout.decode() == f"staged {len(writes)}\n"
        return self.open()

    def cleanup(self) -> None:
        for store in self.stores:
            store.close()


class GroupCommitBackend(LmdbBackend):
    """LMDB behind the group-commit overlay, as the server runs it."""

    name = "group-commit"

    def open(self) -> Store:
        base = LmdbStore(self.path, app_tables=APP_TABLES)
        self.stores.append(base)
        return GroupCommitStore(base)

    def reopen(self, store: Store) -> Store:
        assert isinstance(store, GroupCommitStore)
        store.close()
        return self.open()

    def crash_with_staged(self, store: Store, writes: Sequence[StagedWrite]) -> Store:
        assert isinstance(store, GroupCommitStore)
        store._writer.shutdown()
        base = store._base
        assert isinstance(base, LmdbStore)
        return super().crash_with_staged(base, writes)


@pytest.fixture(params=["memory", "lmdb", "group-commit"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    backends = {"memory": MemoryBackend, "lmdb": lambda: LmdbBackend(tmp_path / "db"),
                "group-commit": lambda: GroupCommitBackend(tmp_path / "db")}
    chosen: Backend = backends[request.param]()
    yield chosen
    chosen.cleanup()


@pytest.fixture
def store(backend: Backend) -> Store:
    return backend.open()


def decide(store: Store, account: str, values: Sequence[bytes], start: int = 0) -> None:
    store.stage(ChosenWrite(account, start + i, value) for i, value in enumerate(values))


def digest_of(values: Sequence[bytes]) -> bytes:
    digest = EMPTY_DIGEST
    for value in values:
        digest = chain_digest(digest, value)
    return digest


# A new store


def test_a_new_store_is_empty(store: Store) -> None:
    assert store.reserved_round() == 0
    assert store.account_record("a") == AccountRecord(NULL_BALLOT, -1, ())
    assert list(store.chosen_values("a", 0, 10)) == []
    assert list(store.account_tails("", 10)) == []
    assert list(store.accounts_with_votes()) == []
    assert store.account_summary("a") == AccountSummary("a", -1, EMPTY_DIGEST)
    assert list(store.account_summaries("", 10)) == []
    assert store.identity() is None
    for table in APP_TABLES:
        assert store.app_get(table, b"k") is None
        assert list(store.app_range(table, b"", b"\xff", 10)) == []


def test_sync_with_nothing_staged_and_an_empty_stage_do_nothing(
    backend: Backend, store: Store
) -> None:
    store.sync()
    store.stage([])
    store.sync()
    store = backend.reopen(store)
    assert store.account_record("a") == AccountRecord(NULL_BALLOT, -1, ())


# Promises


def test_a_promise_only_rises_and_survives_a_restart(backend: Backend, store: Store) -> None:
    store.stage([PromiseWrite("a", B1)])
    assert store.account_record("a").promised == B1
    store.stage([PromiseWrite("a", B2)])
    assert store.account_record("a").promised == B2
    for not_higher in (B1, B2):
        with pytest.raises(BrokenInvariant):
            store.stage([PromiseWrite("a", not_higher)])
    assert store.account_record("a").promised == B2
    assert store.account_record("b").promised == NULL_BALLOT
    store.sync()
    store = backend.reopen(store)
    assert store.account_record("a").promised == B2


# Votes


def test_votes_are_returned_sorted_with_their_ballots(store: Store) -> None:
    store.stage([
        PromiseWrite("a", B1),
        AcceptWrite("a", 2, B1, b"two"),
        AcceptWrite("a", 0, B1, b"zero"),
        AcceptWrite("b", 5, B2, b"other account"),
    ])
    assert store.account_record("a") == AccountRecord(B1, -1, (
        AcceptedEntry(0, B1, b"zero"),
        AcceptedEntry(2, B1, b"two"),
    ))
    # A vote under a higher ballot replaces the one at its slot.
    store.stage([AcceptWrite("a", 2, B3, b"two again")])
    assert store.account_record("a").accepted == (
        AcceptedEntry(0, B1, b"zero"),
        AcceptedEntry(2, B3, b"two again"),
    )
    assert store.account_record("b").accepted == (AcceptedEntry(5, B2, b"other account"),)


def test_a_vote_below_the_promise_is_refused(store: Store) -> None:
    store.stage([PromiseWrite("a", B2)])
    with pytest.raises(BrokenInvariant):
        store.stage([AcceptWrite("a", 0, B1, b"stale")])
    store.stage([AcceptWrite("a", 0, B2, b"at the promise")])
    assert store.account_record("a").accepted == (AcceptedEntry(0, B2, b"at the promise"),)


def test_a_vote_on_a_decided_slot_is_refused(store: Store) -> None:
    decide(store, "a", [b"v0", b"v1"])
    for slot in (0, 1):
        with pytest.raises(BrokenInvariant):
            store.stage([AcceptWrite("a", slot, B1, b"late")])
    store.stage([AcceptWrite("a", 2, B1, b"next")])
    assert store.account_record("a") == AccountRecord(NULL_BALLOT, 1, (
        AcceptedEntry(2, B1, b"next"),
    ))


def test_accounts_with_votes_lists_accounts_with_undecided_votes_sorted(store: Store) -> None:
    store.stage([
        AcceptWrite("b", 0, B1, b"x"),
        AcceptWrite("a", 0, B1, b"x"),
        AcceptWrite("a", 1, B1, b"y"),
        AcceptWrite("ab", 3, B1, b"z"),
    ])
    assert list(store.accounts_with_votes()) == ["a", "ab", "b"]
    decide(store, "a", [b"x", b"y"])  # decides both of a's votes
    assert list(store.accounts_with_votes()) == ["ab", "b"]
    decide(store, "ab", [b"p", b"q"])  # below ab's vote at 3: still undecided
    assert list(store.accounts_with_votes()) == ["ab", "b"]


# Chosen values


def test_a_chosen_value_extends_the_prefix_and_supersedes_the_vote(store: Store) -> None:
    store.stage([
        PromiseWrite("a", B1),
        AcceptWrite("a", 0, B1, b"v0"),
        AcceptWrite("a", 1, B1, b"v1"),
        AcceptWrite("a", 2, B1, b"v2"),
    ])
    store.stage([ChosenWrite("a", 0, b"v0")])
    assert store.account_record("a") == AccountRecord(B1, 0, (
        AcceptedEntry(1, B1, b"v1"),
        AcceptedEntry(2, B1, b"v2"),
    ))
    # The chosen value wins over a different vote at its slot.
    store.stage([ChosenWrite("a", 1, b"other")])
    assert store.account_record("a") == AccountRecord(B1, 1, (AcceptedEntry(2, B1, b"v2"),))
    assert list(store.chosen_values("a", 0, 10)) == [b"v0", b"other"]
    assert list(store.account_tails("", 10)) == [AccountTail("a", 1)]
    assert store.account_summary("a") == AccountSummary(
        "a", 1, chain_digest(chain_digest(EMPTY_DIGEST, b"v0"), b"other")
    )


def test_chosen_values_extend_the_prefix_in_order_only(store: Store) -> None:
    with pytest.raises(BrokenInvariant):
        store.stage([ChosenWrite("a", 1, b"gap")])
    decide(store, "a", [b"v0"])
    for slot in (0, 2):
        with pytest.raises(BrokenInvariant):
            store.stage([ChosenWrite("a", slot, b"out of order")])
    assert list(store.chosen_values("a", 0, 10)) == [b"v0"]
    assert store.account_summary("a") == AccountSummary("a", 0, digest_of([b"v0"]))


def test_chosen_values_are_read_by_range_and_limit(store: Store) -> None:
    values = [b"v%d" % i for i in range(10)]
    decide(store, "a", values)
    decide(store, "ab", [b"neighbour"])  # a key range right after a's
    assert list(store.chosen_values("a", 0, 100)) == values
    assert list(store.chosen_values("a", 3, 4)) == values[3:7]
    assert list(store.chosen_values("a", 8, 5)) == values[8:]
    assert list(store.chosen_values("a", 9, 1)) == [b"v9"]
    assert list(store.chosen_values("a", 10, 5)) == []
    assert list(store.chosen_values("a", 2, 0)) == []
    assert list(store.chosen_values("b", 0, 5)) == []
    assert list(store.chosen_values("ab", 0, 5)) == [b"neighbour"]


def test_the_summary_digest_chains_every_chosen_value(store: Store) -> None:
    values = [b"opening 100", b"deposit 5", b"", b"withdraw 3"]
    decide(store, "a", values[:2])
    assert store.account_summary("a") == AccountSummary("a", 1, digest_of(values[:2]))
    decide(store, "a", values[2:], start=2)
    assert store.account_summary("a") == AccountSummary("a", 3, digest_of(values))
    assert store.account_summary("a").digest != digest_of([*values[:3], b"withdraw 4"])


ACCOUNTS = ["b", "a", "é", "ab", "a b", "aa", "Z", "€uro", "a\x01"]


def test_tails_and_summaries_are_sorted_after_an_exclusive_bound_and_limited(
    store: Store,
) -> None:
    for rank, account in enumerate(ACCOUNTS):
        decide(store, account, [b"%d" % i for i in range(rank + 1)])
    store.stage([AcceptWrite("only-votes", 0, B1, b"v")])  # no chosen value: not listed
    expected = sorted(ACCOUNTS)
    through = {account: ACCOUNTS.index(account) for account in ACCOUNTS}
    assert list(store.account_tails("", 100)) == [AccountTail(a, through[a]) for a in expected]
    assert [s.account for s in store.account_summaries("", 100)] == expected
    for after in ["", "a", "a b", "aa", "ab", "b", "c", "é", "\uffff", "0"]:
        rest = [a for a in expected if a > after]
        for limit in (0, 1, 2, 100):
            tails = store.account_tails(after, limit)
            assert list(tails) == [AccountTail(a, through[a]) for a in rest[:limit]]
            summaries = store.account_summaries(after, limit)
            assert list(summaries) == [store.account_summary(a) for a in rest[:limit]]
    for account in ACCOUNTS:
        values = [b"%d" % i for i in range(through[account] + 1)]
        assert store.account_summary(account) == AccountSummary(
            account, through[account], digest_of(values)
        )


def test_the_empty_account_is_an_account(store: Store) -> None:
    store.stage([PromiseWrite("", B1), AcceptWrite("", 1, B1, b"v1"), ChosenWrite("", 0, b"v0")])
    assert store.account_record("") == AccountRecord(B1, 0, (AcceptedEntry(1, B1, b"v1"),))
    assert list(store.account_tails("", 10)) == []  # strictly after ""
    assert list(store.accounts_with_votes()) == [""]
    assert list(store.chosen_values("", 0, 5)) == [b"v0"]


# The reserved round


def test_the_reserved_round_is_the_last_one_written(backend: Backend, store: Store) -> None:
    store.stage([RoundWrite(10)])
    assert store.reserved_round() == 10
    store.stage([RoundWrite(20), RoundWrite(40)])
    assert store.reserved_round() == 40
    store.sync()
    store = backend.reopen(store)
    assert store.reserved_round() == 40


def test_the_reserved_round_never_goes_down(store: Store) -> None:
    store.stage([RoundWrite(40)])
    with pytest.raises(BrokenInvariant):
        store.stage([RoundWrite(39)])
    assert store.reserved_round() == 40


# Application tables


def test_app_tables_put_get_delete_and_range(backend: Backend, store: Store) -> None:
    store.stage([
        AppWrite("applied", b"k2", b"two"),
        AppWrite("applied", b"k1", b"one"),
        AppWrite("applied", b"k3", b""),
        AppWrite("history", b"k1", b"other table"),
    ])
    assert store.app_get("applied", b"k1") == b"one"
    assert store.app_get("applied", b"k3") == b""
    assert store.app_get("history", b"k1") == b"other table"
    assert store.app_get("requests", b"k1") is None
    assert list(store.app_range("applied", b"k1", b"k3", 10)) == [(b"k1", b"one"), (b"k2", b"two")]
    assert list(store.app_range("applied", b"", b"\xff", 2)) == [(b"k1", b"one"), (b"k2", b"two")]
    assert list(store.app_range("applied", b"k2", b"k2", 10)) == []
    assert list(store.app_range("applied", b"k3", b"k1", 10)) == []
    assert list(store.app_range("applied", b"k1\x00", b"\xff", 10)) == [
        (b"k2", b"two"), (b"k3", b"")
    ]
    assert list(store.app_range("applied", b"", b"\xff", 0)) == []
    store.stage([AppWrite("applied", b"k2", b"TWO"), AppWrite("applied", b"k1", None)])
    store.stage([AppWrite("applied", b"missing", None)])
    assert store.app_get("applied", b"k1") is None
    assert list(store.app_range("applied", b"", b"\xff", 10)) == [(b"k2", b"TWO"), (b"k3", b"")]
    store.sync()
    store = backend.reopen(store)
    assert list(store.app_range("applied", b"", b"\xff", 10)) == [(b"k2", b"TWO"), (b"k3", b"")]
    assert list(store.app_range("history", b"", b"\xff", 10)) == [(b"k1", b"other table")]


def test_app_get_many_answers_like_app_get_for_each_key(backend: Backend, store: Store) -> None:
    store.stage([AppWrite("requests", b"a", b"1"), AppWrite("requests", b"c", b"")])
    store.sync()
    # Staged over synced: a deletion, a new key, an overwrite; asked unsorted, repeated.
    store.stage([AppWrite("requests", b"a", None), AppWrite("requests", b"b", b"2"),
                 AppWrite("requests", b"c", b"3")])
    keys = [b"c", b"a", b"missing", b"b", b"c", b""]
    assert store.app_get_many("requests", keys) == [store.app_get("requests", k) for k in keys]
    assert store.app_get_many("requests", keys) == [b"3", None, None, b"2", b"3", None]
    assert store.app_get_many("history", []) == []
    store.sync()
    store = backend.reopen(store)
    assert store.app_get_many("requests", keys) == [b"3", None, None, b"2", b"3", None]


# Staging, syncing, restarting, crashing


def everything(store: Store) -> tuple[object, ...]:
    """The store's whole observable state for the accounts and keys these tests use."""
    return (
        store.reserved_round(),
        [store.account_record(a) for a in ("a", "b")],
        [list(store.chosen_values(a, 0, 100)) for a in ("a", "b")],
        list(store.account_summaries("", 100)),
        list(store.accounts_with_votes()),
        [list(store.app_range(t, b"", b"\xff", 100)) for t in APP_TABLES],
    )


FIRST: list[StagedWrite] = [
    RoundWrite(5),
    PromiseWrite("a", B1),
    AcceptWrite("a", 0, B1, b"v0"),
    AcceptWrite("a", 1, B1, b"v1"),
    ChosenWrite("a", 0, b"v0"),
    AppWrite("applied", b"a", b"100"),
]
SECOND: list[StagedWrite] = [
    RoundWrite(9),
    PromiseWrite("a", B2),
    AcceptWrite("a", 2, B2, b"v2"),
    ChosenWrite("a", 1, b"v1"),
    AcceptWrite("b", 0, B2, b"w0"),
    ChosenWrite("b", 0, b"w0"),
    AppWrite("applied", b"a", None),
    AppWrite("history", b"a", b"log"),
]


def test_staged_writes_are_visible_before_sync(store: Store) -> None:
    store.stage(FIRST)
    assert store.reserved_round() == 5
    assert store.account_record("a") == AccountRecord(B1, 0, (AcceptedEntry(1, B1, b"v1"),))
    assert list(store.chosen_values("a", 0, 10)) == [b"v0"]
    assert list(store.accounts_with_votes()) == ["a"]
    assert store.account_summary("a") == AccountSummary("a", 0, digest_of([b"v0"]))
    assert store.app_get("applied", b"a") == b"100"
    before = everything(store)
    store.sync()
    assert everything(store) == before


def test_synced_writes_survive_a_restart(backend: Backend, store: Store) -> None:
    store.stage(FIRST)
    store.sync()
    store.stage(SECOND[:3])
    store.stage(SECOND[3:])
    store.sync()
    expected = everything(store)
    store = backend.reopen(store)
    assert everything(store) == expected


def test_close_makes_staged_writes_durable(backend: Backend, store: Store) -> None:
    store.stage(FIRST)
    expected = everything(store)
    store = backend.reopen(store)  # reopen closes without an explicit sync
    assert everything(store) == expected


def test_a_crash_loses_what_was_staged_and_nothing_that_was_synced(
    backend: Backend, store: Store
) -> None:
    store.stage(FIRST)
    store.sync()
    synced = everything(store)
    store = backend.crash_with_staged(store, SECOND)
    assert everything(store) == synced
    # The restarted store carries on from the synced state.
    store.stage(SECOND)
    store.sync()
    assert store.account_record("a") == AccountRecord(B2, 1, (AcceptedEntry(2, B2, b"v2"),))


def test_a_crash_before_the_first_sync_leaves_an_empty_store(
    backend: Backend, store: Store
) -> None:
    empty = everything(store)
    store.stage(FIRST)
    store = backend.crash_with_staged(store, SECOND[:1])
    assert everything(store) == empty


def test_the_identity_is_recorded_at_once(backend: Backend, store: Store) -> None:
    identity = NodeIdentity("n2", (("n1", "10.0.0.1:7000"), ("n2", "10.0.0.2:7000")))
    store.set_identity(identity)
    assert store.identity() == identity
    store = backend.crash_with_staged(store, [])
    assert store.identity() == identity


# Refused writes: a bug in the caller, refused before anything changes


def test_a_write_to_an_undeclared_table_is_refused_and_leaves_nothing_staged(
    backend: Backend, store: Store
) -> None:
    store.stage(FIRST)
    before = everything(store)
    for batch in (
        [AppWrite("undeclared", b"k", b"v")],
        [AppWrite("undeclared", b"k", None)],
        [AppWrite("undeclared", b"k", b"v"), AppWrite("applied", b"b", b"after it")],
    ):
        with pytest.raises(UnknownTable, match="undeclared"):
            store.stage(batch)
        assert everything(store) == before
    for read in (lambda: store.app_get("undeclared", b"k"),
                 lambda: store.app_get_many("undeclared", [b"k"]),
                 lambda: store.app_range("undeclared", b"", b"\xff", 10)):
        with pytest.raises(UnknownTable, match="undeclared"):
            read()
    store.sync()  # commits what was staged before; nothing refused is left to fail it
    store = backend.reopen(store)
    assert everything(store) == before
    assert store.app_get("applied", b"b") is None


#: Writes that break an invariant of the state `INVARIANT_SETUP` leaves.
INVARIANT_SETUP: list[StagedWrite] = [
    RoundWrite(5),
    PromiseWrite("a", B2),
    ChosenWrite("a", 0, b"v0"),
    AcceptWrite("a", 1, B2, b"v1"),
]
BROKEN_INVARIANTS: dict[str, StagedWrite] = {
    "a promise that does not rise": PromiseWrite("a", B2),
    "a promise that goes down": PromiseWrite("a", B1),
    "a vote below the promise": AcceptWrite("a", 2, B1, b"stale"),
    "a vote on a decided slot": AcceptWrite("a", 0, B3, b"late"),
    "a chosen value past the prefix": ChosenWrite("a", 2, b"gap"),
    "a chosen value inside the prefix": ChosenWrite("a", 0, b"again"),
    "a first chosen value past slot 0": ChosenWrite("b", 1, b"gap"),
    "the reserved round going down": RoundWrite(4),
}


@pytest.mark.parametrize("name", BROKEN_INVARIANTS)
def test_a_write_that_breaks_an_invariant_raises_broken_invariant_and_changes_nothing(
    backend: Backend, store: Store, name: str
) -> None:
    store.stage(INVARIANT_SETUP)
    before = everything(store)
    with pytest.raises(BrokenInvariant):
        store.stage([BROKEN_INVARIANTS[name]])
    assert everything(store) == before
    store.sync()
    store = backend.reopen(store)
    assert everything(store) == before


# Run optimized (``python -O``, which strips every assert): each backend still
# refuses each write of BROKEN_INVARIANTS.
_OPTIMIZED_CHILD = """
import pickle, sys
from ledger.storage.base import BrokenInvariant
from ledger.storage.group_commit import GroupCommitStore
from ledger.storage.lmdb import LmdbStore
from ledger.storage.memory import MemoryStore
if __debug__:
    raise SystemExit("not optimized")
setup, broken = pickle.loads(sys.stdin.buffer.read())
directory = sys.argv[1]
openers = {
    "memory": lambda i: MemoryStore(),
    "lmdb": lambda i: LmdbStore(f"{directory}/lmdb{i}"),
    "group-commit": lambda i: GroupCommitStore(LmdbStore(f"{directory}/gc{i}")),
}
for kind, opener in openers.items():
    for i, write in enumerate(broken):
        store = opener(i)
        store.stage(setup)
        try:
            store.stage([write])
        except BrokenInvariant:
            print(kind, "refused")
        else:
            print(kind, "ACCEPTED", write)
        store.close()
"""


def test_invariants_are_checked_when_python_runs_optimized(tmp_path: Path) -> None:
    assert issubclass(BrokenInvariant, AssertionError)  # tests and the simulator catch it so
    broken = list(BROKEN_INVARIANTS.values())
    child = subprocess.run(
        [sys.executable, "-O", "-c", _OPTIMIZED_CHILD, str(tmp_path)],
        input=pickle.dumps((INVARIANT_SETUP, broken)),
        capture_output=True,
        timeout=60,
    )
    assert child.returncode == 0, child.stderr.decode()
    lines = child.stdout.decode().splitlines()
    assert lines == [f"{kind} refused" for kind in ("memory", "lmdb", "group-commit")
                     for _ in broken]
