"""Unit tests of the chaos checker (`ledger.chaos.checker`): pure, no processes, no network.

A hand-built history that a correct cluster could have produced must pass; each
doctored copy of it, broken in exactly one way, must be reported under the right
check, naming the request id or position. Then the same with hypothesis: random
consistent single-client histories pass, and one random mutation of their logs
is always caught.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.chaos.checker import Violation, check
from ledger.chaos.history import FAILED, INDETERMINATE, OK, REFUSED, LogEntry, Op, RunRecord

REPLICAS = ("n1", "n2", "n3")
HOT = "hot"
COLD = "cold"

# ------------------------------------------------------------------ building histories


class History:
    """Appends client operations with consecutive indexes."""

    def __init__(self) -> None:
        self.ops: list[Op] = []

    def write(self, client: int, kind: str, account: str, invoke_ms: float, complete_ms: float,
              outcome: str, amount: int, request_id: str, position: int | None = None,
              balance: int | None = None, duplicate: bool = False, error: str = "") -> Op:
        op = Op(index=len(self.ops), client=client, node=REPLICAS[client % len(REPLICAS)],
                kind=kind, account=account, invoke_ms=invoke_ms, amount=amount,
                request_id=request_id, complete_ms=complete_ms, outcome=outcome,
                position=position, balance=balance, duplicate=duplicate, error=error)
        self.ops.append(op)
        return op

    def read(self, client: int, account: str, invoke_ms: float, complete_ms: float,
             consistency: str, outcome: str = OK, position: int | None = None,
             balance: int | None = None, error: str = "") -> Op:
        op = Op(index=len(self.ops), client=client, node=REPLICAS[client % len(REPLICAS)],
                kind="read", account=account, invoke_ms=invoke_ms, consistency=consistency,
                complete_ms=complete_ms, outcome=outcome, position=position, balance=balance,
                error=error)
        self.ops.append(op)
        return op


def entry(position: int, kind: str, amount: int, balance_after: int, request_id: str,
          rejected: bool = False) -> LogEntry:
    return LogEntry(position, kind, amount, balance_after, request_id, rejected)


def replicated(logs: dict[str, list[LogEntry]]) -> dict[str, dict[str, list[LogEntry]]]:
    """Every replica holding the same logs (separate lists, so one can be doctored alone)."""
    return {replica: {account: list(entries) for account, entries in logs.items()}
            for replica in REPLICAS}


def consistent_record() -> RunRecord:
    """A history a correct 3-node cluster could have produced, with its replicas' logs.

    Three clients; `hot` opened with 100, then overlapping and sequential deposits
    and withdrawals, an overdraft refused, writes failing validation (NOT_FOUND,
    INVALID_ARGUMENT, ALREADY_EXISTS), one indeterminate write that never landed and
    one that landed and was retried (answered as a duplicate), STRONG and LOCAL reads
    (one LOCAL read stale, one STRONG read concurrent with a write and seeing it).
    `cold` fails NOT_FOUND (a deposit and a STRONG read) until it is opened.
    """
    h = History()
    h.write(0, "open", HOT, 0, 10, OK, 100, "open-hot", 0, 100)
    h.write(1, "deposit", COLD, 2, 4, FAILED, 10, "dep-unopened",
            error="NOT_FOUND: account 'cold' does not exist; open it first")
    h.read(1, COLD, 5, 7, "strong", FAILED, error="NOT_FOUND: account 'cold' does not exist")
    h.write(0, "deposit", HOT, 20, 30, OK, 50, "dep-1", 1, 150)
    h.write(1, "withdraw", HOT, 25, 45, OK, 30, "wd-1", 2, 120)  # overlaps dep-1
    h.read(0, HOT, 50, 55, "strong", OK, 2, 120)
    h.write(1, "withdraw", HOT, 60, 70, REFUSED, 500, "wd-big", 3,
            error="FAILED_PRECONDITION: insufficient funds")
    h.write(0, "deposit", HOT, 62, 64, FAILED, 0, "dep-zero",
            error="INVALID_ARGUMENT: amount must be positive")
    h.write(0, "open", HOT, 66, 68, FAILED, 1, "open-hot-again",
            error="ALREADY_EXISTS: account 'hot' is already open")
    h.write(0, "deposit", HOT, 80, 100, INDETERMINATE, 25, "dep-lost",
            error="DEADLINE_EXCEEDED: deadline exceeded")  # never landed, never retried
    h.write(1, "deposit", HOT, 85, 105, INDETERMINATE, 40, "dep-landed",
            error="UNAVAILABLE: connection refused")  # landed at position 4
    h.read(2, HOT, 90, 92, "local", OK, 2, 120)  # stale (misses the refusal at 3): LOCAL may
    h.write(1, "deposit", HOT, 110, 120, OK, 40, "dep-landed", 4, 160, duplicate=True)
    h.write(0, "withdraw", HOT, 140, 150, OK, 60, "wd-2", 5, 100)
    h.read(1, HOT, 145, 160, "strong", OK, 5, 100)  # concurrent with wd-2, sees it
    h.read(2, HOT, 170, 175, "strong", OK, 5, 100)
    h.write(2, "open", COLD, 200, 210, OK, 0, "open-cold", 0, 0)
    h.write(2, "deposit", COLD, 220, 230, OK, 5, "dep-cold", 1, 5)
    h.read(0, COLD, 240, 245, "local", OK, 1, 5)
    logs = {
        HOT: [
            entry(0, "open", 100, 100, "open-hot"),
            entry(1, "deposit", 50, 150, "dep-1"),
            entry(2, "withdrawal", 30, 120, "wd-1"),
            entry(3, "withdrawal", 500, 120, "wd-big", rejected=True),
            entry(4, "deposit", 40, 160, "dep-landed"),
            entry(5, "withdrawal", 60, 100, "wd-2"),
        ],
        COLD: [
            entry(0, "open", 0, 0, "open-cold"),
            entry(1, "deposit", 5, 5, "dep-cold"),
        ],
    }
    return RunRecord(h.ops, [], replicated(logs))


# ------------------------------------------------------------------ doctoring


def rebalance(entries: list[LogEntry]) -> list[LogEntry]:
    """Number the entries 0..n-1 and recompute each balance, as a replica applying them would."""
    out: list[LogEntry] = []
    balance = 0
    for position, e in enumerate(entries):
        if position == 0:
            balance = e.amount
        elif not e.rejected and e.kind == "deposit":
            balance += e.amount
        elif not e.rejected and e.kind == "withdrawal":
            balance -= e.amount
        out.append(replace(e, position=position, balance_after=balance))
    return out


def edit_log(record: RunRecord, account: str,
             edit: Callable[[list[LogEntry]], list[LogEntry]],
             replicas: tuple[str, ...] = REPLICAS) -> None:
    for replica in replicas:
        record.logs[replica][account] = edit(list(record.logs[replica][account]))


def at(entries: list[LogEntry], request_id: str) -> int:
    return next(i for i, e in enumerate(entries) if e.request_id == request_id)


def without(request_id: str) -> Callable[[list[LogEntry]], list[LogEntry]]:
    def edit(entries: list[LogEntry]) -> list[LogEntry]:
        del entries[at(entries, request_id)]
        return rebalance(entries)
    return edit


def changed(request_id: str, **fields: object) -> Callable[[list[LogEntry]], list[LogEntry]]:
    def edit(entries: list[LogEntry]) -> list[LogEntry]:
        i = at(entries, request_id)
        entries[i] = replace(entries[i], **fields)  # type: ignore[arg-type]
        return entries
    return edit


def appended(kind: str, amount: int, request_id: str,
             rejected: bool = False) -> Callable[[list[LogEntry]], list[LogEntry]]:
    def edit(entries: list[LogEntry]) -> list[LogEntry]:
        return rebalance([*entries, entry(len(entries), kind, amount, 0, request_id, rejected)])
    return edit


def write_op(record: RunRecord, request_id: str, outcome: str = OK) -> Op:
    return next(op for op in record.ops
                if op.request_id == request_id and op.outcome == outcome)


def read_at(record: RunRecord, invoke_ms: float) -> Op:
    return next(op for op in record.ops if op.kind == "read" and op.invoke_ms == invoke_ms)


def assert_reports(record: RunRecord, kind: str, *words: str) -> list[Violation]:
    """The checker reports a `kind` violation whose detail names every one of `words`."""
    violations = check(record)
    listing = "\n".join(map(str, violations)) or "(nothing)"
    assert any(v.check == kind and all(w in v.detail for w in words) for v in violations), (
        f"expected a {kind!r} violation naming {words}; the checker said:\n{listing}")
    return violations


def checks(violations: list[Violation]) -> set[str]:
    return {v.check for v in violations}


# ------------------------------------------------------------------ the consistent history


def test_the_consistent_history_passes() -> None:
    assert check(consistent_record()) == []


def test_an_empty_run_passes() -> None:
    assert check(RunRecord()) == []


def test_the_stale_local_read_is_really_stale() -> None:
    """The LOCAL read at 90 ms misses the refusal acknowledged at 70 ms; as STRONG it fails."""
    record = consistent_record()
    read = read_at(record, 90)
    read.consistency = "strong"
    violations = assert_reports(record, "linearizability", f"read {read.index}", "position 3")
    assert checks(violations) == {"linearizability"}


# ------------------------------------------------------------------ acknowledged writes


def test_a_lost_acknowledged_write() -> None:
    record = consistent_record()
    edit_log(record, HOT, without("wd-2"))
    assert_reports(record, "durability", "'wd-2'", "not in the log")


def test_a_lost_acknowledged_open() -> None:
    record = consistent_record()
    edit_log(record, COLD, lambda entries: [])
    assert_reports(record, "durability", "'open-cold'", "not in the log")
    assert_reports(record, "durability", "'dep-cold'", "not in the log")


def test_an_acknowledged_write_reported_at_another_position() -> None:
    record = consistent_record()
    write_op(record, "wd-2").position = 4
    violations = assert_reports(record, "durability", "'wd-2'", "position 4", "position 5")
    assert checks(violations) == {"durability"}


def test_an_acknowledged_write_logged_at_another_position() -> None:
    """The log swaps the refusal and the landed deposit: the retry's reply named position 4."""
    record = consistent_record()

    def swap(entries: list[LogEntry]) -> list[LogEntry]:
        entries[3], entries[4] = entries[4], entries[3]
        return rebalance(entries)

    edit_log(record, HOT, swap)
    assert_reports(record, "durability", "'dep-landed'", "position 4", "position 3")


def test_an_acknowledged_write_with_another_balance() -> None:
    record = consistent_record()
    write_op(record, "wd-2").balance = 99
    violations = assert_reports(record, "durability", "'wd-2'", "balance 99", "balance 100")
    assert checks(violations) == {"durability"}


def test_an_acknowledged_write_logged_for_another_amount() -> None:
    record = consistent_record()
    edit_log(record, HOT, lambda entries: rebalance(changed("dep-1", amount=55)(entries)))
    assert_reports(record, "durability", "'dep-1'", "of 50", "deposit of 55")


def test_an_acknowledged_write_logged_as_refused() -> None:
    record = consistent_record()
    edit_log(record, HOT, lambda entries: rebalance(changed("wd-2", rejected=True)(entries)))
    assert_reports(record, "durability", "'wd-2'", "refused withdrawal")


# ------------------------------------------------------------------ exactly once


def test_a_request_id_listed_twice() -> None:
    record = consistent_record()
    edit_log(record, HOT, appended("deposit", 50, "dep-1"))
    assert_reports(record, "exactly-once", "'dep-1'", "positions 1 and 6")


def test_an_indeterminate_write_applied_twice() -> None:
    record = consistent_record()
    edit_log(record, HOT, appended("deposit", 40, "dep-landed"))
    assert_reports(record, "exactly-once", "'dep-landed'", "positions 4 and 6")


def test_an_indeterminate_write_that_landed_later_is_fine() -> None:
    """The unretried indeterminate deposit may land after the run's other writes."""
    record = consistent_record()
    edit_log(record, HOT, appended("deposit", 25, "dep-lost"))
    assert check(record) == []


def test_a_refused_write_missing_from_the_log() -> None:
    record = consistent_record()
    edit_log(record, HOT, without("wd-big"))
    assert_reports(record, "exactly-once", "'wd-big'", "not in the log as a refusal")


def test_a_refused_write_logged_as_applied() -> None:
    record = consistent_record()
    edit_log(record, HOT, lambda entries: rebalance(changed("wd-big", rejected=False)(entries)))
    violations = assert_reports(record, "exactly-once", "'wd-big'", "not in the log as a refusal")
    assert "no-overdraft" in checks(violations)


def test_a_refusal_reported_at_another_position() -> None:
    record = consistent_record()
    write_op(record, "wd-big", REFUSED).position = 2
    violations = assert_reports(record, "durability", "'wd-big'", "position 2", "position 3")
    assert checks(violations) == {"durability"}


def test_a_refusal_logged_twice() -> None:
    record = consistent_record()
    edit_log(record, HOT, appended("withdrawal", 500, "wd-big", rejected=True))
    assert_reports(record, "exactly-once", "'wd-big'", "positions 3 and 6")


@pytest.mark.parametrize(("account", "kind", "amount", "request_id"), [
    (COLD, "deposit", 10, "dep-unopened"),  # NOT_FOUND
    (HOT, "deposit", 0, "dep-zero"),  # INVALID_ARGUMENT
    (HOT, "open", 1, "open-hot-again"),  # ALREADY_EXISTS
])
def test_a_failed_write_that_wrote_anyway(account: str, kind: str, amount: int,
                                          request_id: str) -> None:
    record = consistent_record()
    edit_log(record, account, appended(kind, amount, request_id))
    position = len(record.logs["n1"][account]) - 1
    assert_reports(record, "validation", f"{request_id!r}", f"position {position}")


def test_a_failed_retry_of_a_write_that_landed_is_fine() -> None:
    """Only a request whose every attempt failed must be absent from the log."""
    record = consistent_record()
    ops = record.ops
    ops.append(replace(write_op(record, "dep-landed"), index=len(ops), invoke_ms=300,
                       complete_ms=301, outcome=FAILED, position=None, balance=None,
                       duplicate=False, error="ALREADY_EXISTS"))
    assert check(record) == []


# ------------------------------------------------------------------ reads


def test_a_stale_strong_read() -> None:
    record = consistent_record()
    read = read_at(record, 170)
    read.position, read.balance = 4, 160
    violations = assert_reports(record, "linearizability", f"read {read.index}", "position 4",
                                "missing position 5")
    assert checks(violations) == {"linearizability"}


def test_the_same_stale_local_read_is_allowed() -> None:
    record = consistent_record()
    read = read_at(record, 170)
    read.position, read.balance, read.consistency = 4, 160, "local"
    assert check(record) == []


def test_a_strong_read_of_a_write_from_the_future() -> None:
    """The read at 50-55 ms returns position 4, holding writes invoked at 60 and 85 ms."""
    record = consistent_record()
    read = read_at(record, 50)
    read.position, read.balance = 4, 160
    assert_reports(record, "linearizability", f"read {read.index}", "position 4",
                   "invoked after the read ended")


def test_a_local_read_of_a_write_from_the_future() -> None:
    """No replica can hold a write before it is sent: not even a LOCAL read sees one."""
    record = consistent_record()
    read = read_at(record, 90)
    read.position, read.balance = 4, 160  # dep-landed was invoked at 85: fine
    assert check(record) == []
    read.position, read.balance = 5, 100  # wd-2 was invoked at 140, after the read ended
    assert_reports(record, "linearizability", f"read {read.index}", "position 5",
                   "invoked after the read ended")


def test_a_strong_read_that_finds_no_account_after_its_open_was_acknowledged() -> None:
    record = consistent_record()
    h = History()
    h.ops = record.ops
    read = h.read(1, COLD, 250, 255, "strong", FAILED, error="NOT_FOUND")
    assert_reports(record, "linearizability", f"read {read.index}", "position 1")
    read.consistency = "local"  # a LOCAL read may come from a replica that has not applied it
    assert check(record) == []


@pytest.mark.parametrize(("position", "balance"), [(5, 101), (2, 100), (6, 100), (-1, 100)])
def test_a_read_of_a_balance_the_log_does_not_hold(position: int, balance: int) -> None:
    record = consistent_record()
    read = read_at(record, 170)
    read.position, read.balance = position, balance
    assert_reports(record, "read", f"read {read.index}", f"balance {balance}",
                   f"position {position}")


def test_a_read_of_an_account_no_replica_holds() -> None:
    record = consistent_record()
    h = History()
    h.ops = record.ops
    read = h.read(0, "ghost", 300, 301, "local", OK, 0, 0)
    assert_reports(record, "read", f"read {read.index}", "position 0")


# ------------------------------------------------------------------ agreement


def test_a_replica_missing_the_last_entry() -> None:
    record = consistent_record()
    edit_log(record, HOT, lambda entries: entries[:-1], replicas=("n3",))
    violations = assert_reports(record, "agreement", "n1, n2: 6 entries", "n3: 5 entries",
                                "position 5")
    assert checks(violations) == {"agreement"}  # the checker goes on with the longest log


def test_a_replica_with_another_value_at_a_position() -> None:
    record = consistent_record()
    edit_log(record, HOT, lambda entries: rebalance(changed("wd-1", amount=31)(entries)),
             replicas=("n2",))
    assert_reports(record, "agreement", "n1, n3", "n2", "position 2")


def test_a_replica_that_lacks_an_account() -> None:
    record = consistent_record()
    del record.logs["n1"][COLD]
    assert_reports(record, "agreement", "n1: 0 entries", "n2, n3: 2 entries", "position 0")


# ------------------------------------------------------------------ replay and conservation


def test_an_overdraft() -> None:
    """A withdrawal of 200 from 160 acknowledged with balance -40, consistently logged."""
    record = consistent_record()
    op = write_op(record, "wd-2")
    op.amount, op.balance = 200, -40
    read_at(record, 145).balance = read_at(record, 170).balance = -40
    edit_log(record, HOT, lambda entries: rebalance(changed("wd-2", amount=200)(entries)))
    violations = assert_reports(record, "no-overdraft", "balance -40", "position 5")
    assert checks(violations) == {"no-overdraft"}


def test_a_balance_that_replay_contradicts() -> None:
    record = consistent_record()
    write_op(record, "dep-1").balance = 151
    edit_log(record, HOT, changed("dep-1", balance_after=151))
    violations = assert_reports(record, "replay", "position 1", "balance 151", "gives 150")
    assert checks(violations) == {"replay"}


def test_a_wrongful_refusal() -> None:
    """A withdrawal of 100 refused while the balance was 120."""
    record = consistent_record()
    write_op(record, "wd-big", REFUSED).amount = 100
    edit_log(record, HOT, changed("wd-big", amount=100))
    violations = assert_reports(record, "replay", "position 3", "120")
    assert checks(violations) == {"replay"}


def test_a_final_balance_that_does_not_add_up() -> None:
    record = consistent_record()
    edit_log(record, HOT, changed("wd-2", balance_after=1_000))
    assert_reports(record, "conservation", "final balance 1000")


def test_money_from_nowhere() -> None:
    """A consistently logged deposit that no client ever sent."""
    record = consistent_record()
    edit_log(record, HOT, appended("deposit", 1_000, "phantom"))
    violations = assert_reports(record, "conservation", "'phantom'", "position 6")
    assert checks(violations) == {"conservation"}


def test_an_unacknowledged_write_logged_for_another_amount() -> None:
    """The indeterminate deposit of 25 lands as 2500: no reply to compare with, still wrong."""
    record = consistent_record()
    edit_log(record, HOT, appended("deposit", 2_500, "dep-lost"))
    violations = assert_reports(record, "conservation", "'dep-lost'", "position 6", "2500", "25")
    assert checks(violations) == {"conservation"}


# ------------------------------------------------------------------ real-time order and shape


def test_real_time_order_broken() -> None:
    """wd-1 (position 2) acknowledged at 28 ms, before dep-1 (position 1) was invoked at 35."""
    record = consistent_record()
    write_op(record, "wd-1").complete_ms = 28
    dep = write_op(record, "dep-1")
    dep.invoke_ms, dep.complete_ms = 35, 40
    violations = assert_reports(record, "linearizability", "'wd-1'", "position 2", "'dep-1'")
    assert checks(violations) == {"linearizability"}


def test_real_time_order_counts_refusals_and_first_attempts() -> None:
    """The landed deposit's first attempt (85 ms) came after the refusal's reply (70 ms)."""
    record = consistent_record()

    def swap(entries: list[LogEntry]) -> list[LogEntry]:
        entries[3], entries[4] = entries[4], entries[3]
        return rebalance(entries)

    edit_log(record, HOT, swap)
    write_op(record, "dep-landed").position = 3
    write_op(record, "wd-big", REFUSED).position = 4
    violations = assert_reports(record, "linearizability", "'wd-big'", "position 4",
                                "'dep-landed'")
    assert "durability" not in checks(violations)


def test_a_log_that_does_not_begin_with_the_open() -> None:
    record = consistent_record()
    edit_log(record, HOT, without("open-hot"))
    assert_reports(record, "log", "position 0", "deposit, not the open")


def test_a_second_open() -> None:
    record = consistent_record()
    edit_log(record, COLD, appended("open", 0, "open-cold-2"))
    assert_reports(record, "log", "position 2", "second open")


def test_a_gap_in_positions() -> None:
    record = consistent_record()
    write_op(record, "dep-cold").position = 2
    edit_log(record, COLD, changed("dep-cold", position=2))
    assert_reports(record, "log", "position 2 where 1 belongs")


def test_two_entries_numbered_alike_do_not_crash_the_checker() -> None:
    """Equal positions and invoke times, one request never acknowledged: still a report."""
    record = consistent_record()
    write_op(record, "dep-lost", INDETERMINATE).invoke_ms = 60  # as wd-big
    edit_log(record, HOT, lambda entries: [*entries,
                                           entry(3, "deposit", 25, 125, "dep-lost")])
    assert_reports(record, "log", "position 3 where 6 belongs")


# ------------------------------------------------------------------ properties

ACCOUNT = "acct"
OUTCOMES = ("answered", "lost", "landed", "landed-retried", "lost-retried")


@dataclass(frozen=True)
class Step:
    kind: str  # deposit | withdraw | read | unopened
    amount: int = 0
    outcome: str = "answered"  # for writes: one of OUTCOMES
    strong: bool = True  # for reads
    lag: int = 0  # for LOCAL reads: how many positions behind


steps = st.one_of(
    st.builds(Step, st.sampled_from(["deposit", "withdraw"]), st.integers(1, 300),
              st.sampled_from(OUTCOMES)),
    st.builds(Step, st.just("read"), strong=st.booleans(), lag=st.integers(0, 5)),
    st.builds(Step, st.just("unopened"), st.integers(1, 50)),
)


def sequential_record(opening: int, plan: list[Step]) -> RunRecord:
    """One client, one operation at a time, against a model of the ledger.

    Withdrawals beyond the balance are refused (and logged as refusals). An
    indeterminate write either never lands or lands (at its turn); either may be
    retried with its request id and then answered definitely.
    """
    h = History()
    clock = 0.0

    def tick() -> float:
        nonlocal clock
        clock += 1
        return clock

    log: list[LogEntry] = []
    balance = opening
    h.write(0, "open", ACCOUNT, tick(), tick(), OK, opening, "r-open", 0, opening)
    log.append(entry(0, "open", opening, opening, "r-open"))
    for number, step in enumerate(plan):
        rid = f"r-{number}"
        if step.kind == "unopened":
            h.write(0, "deposit", "never-opened", tick(), tick(), FAILED, step.amount, rid,
                    error="NOT_FOUND")
            continue
        if step.kind == "read":
            if step.strong:
                h.read(0, ACCOUNT, tick(), tick(), "strong", OK, len(log) - 1, balance)
            else:
                seen = log[max(0, len(log) - 1 - step.lag)]
                h.read(0, ACCOUNT, tick(), tick(), "local", OK, seen.position, seen.balance_after)
            continue
        if step.outcome in ("lost", "landed", "landed-retried", "lost-retried"):
            h.write(0, step.kind, ACCOUNT, tick(), tick(), INDETERMINATE, step.amount, rid,
                    error="UNAVAILABLE")
            if step.outcome == "lost":
                continue
        refused = step.kind == "withdraw" and step.amount > balance
        if not refused:
            balance += step.amount if step.kind == "deposit" else -step.amount
        position = len(log)
        log.append(entry(position, "deposit" if step.kind == "deposit" else "withdrawal",
                         step.amount, balance, rid, rejected=refused))
        if step.outcome == "landed":
            continue
        duplicate = step.outcome == "landed-retried"
        if refused:
            h.write(0, step.kind, ACCOUNT, tick(), tick(), REFUSED, step.amount, rid, position,
                    error="FAILED_PRECONDITION")
        else:
            h.write(0, step.kind, ACCOUNT, tick(), tick(), OK, step.amount, rid, position,
                    balance, duplicate=duplicate)
    return RunRecord(h.ops, [], replicated({ACCOUNT: log}))


def acknowledged(record: RunRecord) -> set[str]:
    return {op.request_id for op in record.ops if op.is_write and op.outcome in (OK, REFUSED)}


def renumbered(entries: list[LogEntry]) -> list[LogEntry]:
    return [replace(e, position=i) for i, e in enumerate(entries)]


def drop_acknowledged(entries: list[LogEntry], acked: set[str],
                      data: st.DataObject) -> list[LogEntry]:
    i = data.draw(st.sampled_from([i for i, e in enumerate(entries) if e.request_id in acked]))
    return renumbered(entries[:i] + entries[i + 1:])


def swap_two(entries: list[LogEntry], acked: set[str], data: st.DataObject) -> list[LogEntry]:
    """Swap two entries, one of them acknowledged, keeping each entry's own balance."""
    pairs = [(i, j) for i in range(len(entries)) for j in range(i + 1, len(entries))
             if acked & {entries[i].request_id, entries[j].request_id}]
    i, j = data.draw(st.sampled_from(pairs))
    entries[i], entries[j] = entries[j], entries[i]
    return renumbered(entries)


def duplicate_one(entries: list[LogEntry], acked: set[str],
                  data: st.DataObject) -> list[LogEntry]:
    i = data.draw(st.integers(0, len(entries) - 1))
    return renumbered([*entries[:i + 1], entries[i], *entries[i + 1:]])


def change_amount(entries: list[LogEntry], acked: set[str],
                  data: st.DataObject) -> list[LogEntry]:
    """Change one amount and recompute every balance, so the log is self-consistent."""
    i = data.draw(st.integers(0, len(entries) - 1))
    entries[i] = replace(entries[i], amount=entries[i].amount + data.draw(st.integers(1, 100)))
    return rebalance(entries)


Mutation = Callable[[list[LogEntry], set[str], st.DataObject], list[LogEntry]]
MUTATIONS: list[Mutation] = [drop_acknowledged, swap_two, duplicate_one, change_amount]


@settings(max_examples=100, deadline=None)
@given(opening=st.integers(0, 500), plan=st.lists(steps, max_size=25))
def test_random_consistent_histories_pass(opening: int, plan: list[Step]) -> None:
    record = sequential_record(opening, plan)
    assert check(record) == [], "\n".join(map(str, check(record)))


@settings(max_examples=200, deadline=None)
@given(opening=st.integers(0, 500), plan=st.lists(steps, max_size=25),
       mutation=st.sampled_from(MUTATIONS), data=st.data())
def test_one_random_mutation_is_always_caught(opening: int, plan: list[Step],
                                              mutation: Mutation, data: st.DataObject) -> None:
    record = sequential_record(opening, plan)
    entries = record.logs["n1"][ACCOUNT]
    if mutation is swap_two and len(entries) < 2:
        mutation = duplicate_one
    doctored = mutation(list(entries), acknowledged(record), data)
    for replica in REPLICAS:  # every replica alike: agreement alone must not be the catch
        record.logs[replica][ACCOUNT] = list(doctored)
    assert check(record) != [], f"{mutation.__name__} went unnoticed: {doctored}"


def test_the_record_is_not_changed_by_checking() -> None:
    record = consistent_record()
    before = copy.deepcopy(record)
    check(record)
    assert record == before
