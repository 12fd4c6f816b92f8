"""The ledger state machine over a MemoryStore: applying chosen entries agrees with `replay`."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.accounts import (
    AccountState,
    Applied,
    Kind,
    NoOp,
    Operation,
    Refusal,
    Refused,
    Verdict,
    replay,
)
from ledger.bank import codec
from ledger.bank.model import HistoryEntry
from ledger.bank.state_machine import LedgerStateMachine
from ledger.paxos import Committed
from ledger.storage.memory import MemoryStore
from ledger.v1 import records_pb2
from tests.support.strategies import logs


class Replica:
    """A state machine over a MemoryStore, fed chosen values in log order as the driver does."""

    def __init__(self) -> None:
        self.store = MemoryStore(LedgerStateMachine.TABLES)
        self.machine = LedgerStateMachine(self.store)

    def apply(self, account: str, value: bytes) -> None:
        slot = self.machine.applied_slot(account) + 1
        self.store.stage(self.machine.apply([Committed(account, slot, value)]))
        self.store.stage(self.machine.flush())
        self.store.sync()

    def apply_log(self, account: str, entries: list[list[Operation]]) -> None:
        for entry in entries:
            self.apply(account, codec.encode_entry(entry))

    def history(self, account: str) -> list[HistoryEntry]:
        return self.machine.history(account, 0, 1_000)


def expected_history(entries: list[list[Operation]]) -> list[HistoryEntry]:
    """The history `replay` implies: one entry per numbered (applied or refused) op."""
    _, verdicts = replay(entries)
    operations = [op for entry in entries for op in entry]
    history = []
    for op, verdict in zip(operations, verdicts, strict=True):
        if isinstance(verdict, NoOp):
            continue
        refused = isinstance(verdict, Refused)
        history.append(HistoryEntry(
            verdict.position, op.kind, op.amount, verdict.balance, op.request_id, op.memo,
            refused, verdict.reason.value if refused else "", op.recorded_at_ms, op.principal))
    return history


def deciding(entries: list[list[Operation]]) -> dict[str, tuple[Operation, Verdict]]:
    _, verdicts = replay(entries)
    operations = [op for entry in entries for op in entry]
    first: dict[str, tuple[Operation, Verdict]] = {}
    for op, verdict in zip(operations, verdicts, strict=True):
        if not isinstance(verdict, NoOp):
            first.setdefault(op.request_id, (op, verdict))
    return first


def check_agrees_with_replay(replica: Replica, account: str,
                             entries: list[list[Operation]]) -> None:
    state, _ = replay(entries)
    stored = replica.machine.account(account)
    assert stored.state == state
    assert stored.applied_slot == len(entries) - 1
    assert replica.history(account) == expected_history(entries)
    for request_id, (op, verdict) in deciding(entries).items():
        decision = replica.machine.decision(account, request_id)
        assert decision is not None
        assert (decision.position, decision.balance_after, decision.rejected) == (
            verdict.position, verdict.balance, isinstance(verdict, Refused))
        assert (decision.operation.kind, decision.operation.amount, decision.operation.memo) == (
            op.kind, op.amount, op.memo)
    # What was written to the store, not just the cache, says the same.
    reloaded = LedgerStateMachine(replica.store)
    assert reloaded.account(account) == stored
    assert reloaded.history(account, 0, 1_000) == replica.history(account)


@given(logs())
def test_applying_entries_gives_the_state_replay_computes(entries: list[list[Operation]]) -> None:
    replica = Replica()
    replica.apply_log("acct", entries)
    check_agrees_with_replay(replica, "acct", entries)


@given(logs(), logs())
def test_accounts_are_independent(first: list[list[Operation]],
                                  second: list[list[Operation]]) -> None:
    replica = Replica()
    # Interleave the two logs; request ids are scoped to their account.
    for index in range(max(len(first), len(second))):
        if index < len(first):
            replica.apply("a", codec.encode_entry(first[index]))
        if index < len(second):
            replica.apply("a.b", codec.encode_entry(second[index]))
    check_agrees_with_replay(replica, "a", first)
    check_agrees_with_replay(replica, "a.b", second)


def test_duplicate_request_ids_within_one_entry_and_across_entries() -> None:
    entries = [
        [Operation(Kind.OPEN, 100, "open")],
        [Operation(Kind.DEPOSIT, 10, "d1", "first"), Operation(Kind.DEPOSIT, 10, "d1", "first"),
         Operation(Kind.WITHDRAWAL, 500, "w1"), Operation(Kind.DEPOSIT, 99, "w1")],
        [Operation(Kind.DEPOSIT, 10, "d1", "first"), Operation(Kind.WITHDRAWAL, 5, "w1"),
         Operation(Kind.OPEN, 7, "open"), Operation(Kind.WITHDRAWAL, 30, "w2")],
    ]
    replica = Replica()
    replica.apply_log("acct", entries)
    check_agrees_with_replay(replica, "acct", entries)
    history = replica.history("acct")
    assert [(e.position, e.request_id, e.rejected, e.balance_after) for e in history] == [
        (0, "open", False, 100), (1, "d1", False, 110), (2, "w1", True, 110),
        (3, "w2", False, 80)]
    assert history[2].reject_reason == "insufficient funds"
    assert replica.machine.account("acct").state == AccountState(True, 80, 4)


def test_a_second_open_under_another_request_id_is_not_numbered() -> None:
    entries = [[Operation(Kind.OPEN, 5, "a")], [Operation(Kind.OPEN, 9, "b")],
               [Operation(Kind.DEPOSIT, 1, "c")]]
    replica = Replica()
    replica.apply_log("acct", entries)
    check_agrees_with_replay(replica, "acct", entries)
    assert replica.machine.decision("acct", "b") is None
    assert [e.request_id for e in replica.history("acct")] == ["a", "c"]


def malformed_values() -> list[bytes]:
    bad_kind = records_pb2.LogEntry(operations=[records_pb2.LogOperation(
        kind=records_pb2.OPERATION_KIND_UNSPECIFIED, amount=5, request_id="k")])
    negative = records_pb2.LogEntry(operations=[records_pb2.LogOperation(
        kind=records_pb2.OPERATION_KIND_DEPOSIT, amount=-5, request_id="n")])
    zero = records_pb2.LogEntry(operations=[records_pb2.LogOperation(
        kind=records_pb2.OPERATION_KIND_WITHDRAWAL, amount=0, request_id="z")])
    huge = records_pb2.LogEntry(operations=[records_pb2.LogOperation(
        kind=records_pb2.OPERATION_KIND_DEPOSIT, amount=10**15 + 1, request_id="h")])
    return [b"\xff\xff\xff", b"\x0a\x05garbage", bad_kind.SerializeToString(),
            negative.SerializeToString(), zero.SerializeToString(), huge.SerializeToString()]


@pytest.mark.parametrize("value", malformed_values(),
                         ids=["garbage", "truncated", "bad-kind", "negative", "zero", "huge"])
def test_a_malformed_value_is_skipped_as_a_no_op(value: bytes) -> None:
    entries = [[Operation(Kind.OPEN, 100, "open")], [Operation(Kind.DEPOSIT, 5, "d")]]
    replica = Replica()
    replica.apply_log("acct", entries[:1])
    replica.apply("acct", value)  # position 1: not a ledger entry
    replica.apply_log("acct", entries[1:])
    stored = replica.machine.account("acct")
    assert stored.applied_slot == 2
    assert stored.state == replay(entries)[0] == AccountState(True, 105, 2)
    assert [e.position for e in replica.history("acct")] == [0, 1]


def test_a_malformed_value_at_position_zero_leaves_the_account_unopened() -> None:
    replica = Replica()
    replica.apply("acct", b"\xff")
    assert replica.machine.account("acct").state == AccountState()
    assert replica.machine.opened_accounts("", 10) == []
    replica.apply_log("acct", [[Operation(Kind.OPEN, 3, "o")]])
    assert replica.machine.account("acct").state == AccountState(True, 3, 1)
    assert replica.machine.opened_accounts("", 10) == ["acct"]


@given(st.binary(max_size=64))
def test_applying_any_bytes_never_fails_and_agrees_with_replay(value: bytes) -> None:
    opening = [Operation(Kind.OPEN, 10, "o")]
    replica = Replica()
    replica.apply_log("acct", [opening])
    replica.apply("acct", value)
    try:
        decoded = codec.decode_entry(value)
    except codec.MalformedEntry:
        decoded = []
    assert replica.machine.account("acct").state == replay([opening, decoded])[0]
    assert replica.machine.applied_slot("acct") == 1


def test_codec_round_trips_entries() -> None:
    entry = [Operation(Kind.OPEN, 0, "o", "", 1),
             Operation(Kind.DEPOSIT, 10**15, "d", "m" * 200, 2),
             Operation(Kind.WITHDRAWAL, 1, "~" * 64, "", 3)]
    assert codec.decode_entry(codec.encode_entry(entry)) == entry


def test_history_pages_and_accounts_list_in_order() -> None:
    replica = Replica()
    for name in ["b", "a", "c-1", "c", "unopened"]:
        if name == "unopened":
            replica.apply(name, codec.encode_entry([Operation(Kind.DEPOSIT, 1, "d")]))
            continue
        replica.apply_log(name, [[Operation(Kind.OPEN, 1, "o")]] +
                          [[Operation(Kind.DEPOSIT, 1, f"d{i}")] for i in range(5)])
    assert replica.machine.opened_accounts("", 100) == ["a", "b", "c", "c-1"]
    assert replica.machine.opened_accounts("", 2) == ["a", "b"]
    assert replica.machine.opened_accounts("b", 2) == ["c", "c-1"]
    assert replica.machine.opened_accounts("c-1", 2) == []
    assert [e.position for e in replica.machine.history("c", 2, 3)] == [2, 3, 4]
    assert [e.position for e in replica.machine.history("c", 4, 100)] == [4, 5]
    assert replica.machine.history("c", 6, 100) == []
    assert all(e.request_id != "" for e in replica.machine.history("c-1", 0, 100))


def test_applied_verdicts_are_what_history_reports() -> None:
    entries = [[Operation(Kind.OPEN, 10, "o")], [Operation(Kind.WITHDRAWAL, 11, "w")],
               [Operation(Kind.DEPOSIT, 1, "d")], [Operation(Kind.WITHDRAWAL, 11, "w2")]]
    replica = Replica()
    replica.apply_log("x", entries)
    _, verdicts = replay(entries)
    assert verdicts == [Applied(0, 10), Refused(1, 10, Refusal.INSUFFICIENT_FUNDS),
                        Applied(2, 11), Applied(3, 0)]
    assert [(e.rejected, e.balance_after) for e in replica.history("x")] == [
        (False, 10), (True, 10), (False, 11), (False, 0)]


def test_looking_up_accounts_that_were_never_opened_caches_nothing() -> None:
    replica = Replica()
    for index in range(100):
        assert not replica.machine.account(f"ghost-{index}").state.opened
    assert replica.machine._accounts == {}


def test_the_decisions_kept_for_writers_are_bounded_in_number() -> None:
    from ledger.bank import state_machine

    replica = Replica()
    replica.apply_log("big", [[Operation(Kind.OPEN, 0, "open")]])
    entry = [Operation(Kind.DEPOSIT, 1, f"d{i}") for i in range(512)]
    for round_ in range(60):  # 30,720 decisions in all
        replica.apply_log("big", [[Operation(o.kind, o.amount, f"{o.request_id}-{round_}")
                                   for o in entry]])
    assert replica.machine._recent_decisions <= state_machine.MAX_RECENT_DECISIONS
    assert sum(map(len, replica.machine._recent.values())) == replica.machine._recent_decisions


@pytest.mark.parametrize("operation", [
    records_pb2.LogOperation(kind=records_pb2.OPERATION_KIND_DEPOSIT, amount=1,
                             request_id="r" * 600),
    records_pb2.LogOperation(kind=records_pb2.OPERATION_KIND_DEPOSIT, amount=1,
                             request_id=""),
    records_pb2.LogOperation(kind=records_pb2.OPERATION_KIND_DEPOSIT, amount=1,
                             request_id="ok", memo="m" * 201),
], ids=["request-id-past-the-key-limit", "no-request-id", "memo-too-long"])
def test_a_chosen_entry_the_bank_could_not_store_is_skipped_not_stored(
    operation: records_pb2.LogOperation
) -> None:
    # A 600-byte request id made a request key LMDB refuses: every sync failed after.
    value = records_pb2.LogEntry(operations=[operation]).SerializeToString()
    with pytest.raises(codec.MalformedEntry):
        codec.decode_entry(value)
    replica = Replica()
    replica.apply_log("acct", [[Operation(Kind.OPEN, 5, "open")]])
    replica.apply("acct", value)
    assert replica.machine.account("acct").state.balance == 5
