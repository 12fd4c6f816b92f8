"""The checker's transfer half on hand-built histories: a consistent one passes; each
doctored copy (a lost or doubled credit, a refused transfer credited, a transfer left
half done, a wrong position acknowledged, an audit that does not add up, a negative
balance in a cut) is caught under the right check."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from ledger.chaos.checker import check
from ledger.chaos.history import OK, REFUSED, LogEntry, Op, RunRecord

REPLICAS = ("n1", "n2", "n3")
A, B = "vault-0", "vault-1"


def op(index: int, kind: str, invoke_ms: float, outcome: str, **fields: object) -> Op:
    return Op(index=index, client=0, node="n1", kind=kind, invoke_ms=invoke_ms,
              complete_ms=invoke_ms + 5, outcome=outcome, **fields)  # type: ignore[arg-type]


def consistent() -> tuple[list[Op], dict[str, list[LogEntry]]]:
    """Two vaults of 1000: A sends B 300 (acknowledged), then 900 (refused: A has 700),
    B sends A 50 (its client gave up; a courier completed it); audits in between."""
    ops = [
        op(0, "open", 0, OK, account=A, amount=1000, request_id="oa", position=0, balance=1000),
        op(1, "open", 10, OK, account=B, amount=1000, request_id="ob", position=0, balance=1000),
        op(2, "transfer", 20, OK, account=A, counterparty=B, amount=300, request_id="t1",
           position=1, balance=700, to_position=1),
        op(3, "audit", 30, OK, account="", audited={A: [700, 300], B: [1000, 0]}),
        op(4, "transfer", 40, REFUSED, account=A, counterparty=B, amount=900,
           request_id="t2", position=2),
        op(5, "transfer", 50, "indeterminate", account=B, counterparty=A, amount=50,
           request_id="t3"),
        op(6, "audit", 60, OK, account="", audited={A: [700, 0], B: [1250, 50]}),
        op(7, "audit", 70, OK, account="", audited={A: [700, 300]}),  # B not open there yet
    ]
    logs = {
        A: [LogEntry(0, "open", 1000, 1000, "oa"),
            LogEntry(1, "transfer_out", 300, 700, "t1", counterparty=B),
            LogEntry(2, "transfer_out", 900, 700, "t2", rejected=True, counterparty=B),
            LogEntry(3, "transfer_in", 50, 750, "t3", counterparty=B)],
        B: [LogEntry(0, "open", 1000, 1000, "ob"),
            LogEntry(1, "transfer_in", 300, 1300, "t1", counterparty=A),
            LogEntry(2, "transfer_out", 50, 1250, "t3", counterparty=A)],
    }
    return ops, logs


def violations(ops: list[Op], logs: dict[str, list[LogEntry]]) -> list[str]:
    replicas = {r: {a: list(e) for a, e in logs.items()} for r in REPLICAS}
    return [str(v) for v in check(RunRecord(ops, [], replicas))]


def test_a_consistent_bank_history_passes() -> None:
    assert violations(*consistent()) == []


def drop_credit(ops: list[Op], logs: dict[str, list[LogEntry]]) -> None:
    logs[A].pop()  # t3's credit never came: half done


def double_credit(ops: list[Op], logs: dict[str, list[LogEntry]]) -> None:
    logs[B].append(LogEntry(3, "transfer_in", 300, 1550, "t1", counterparty=A))


def credit_the_refused(ops: list[Op], logs: dict[str, list[LogEntry]]) -> None:
    logs[B].append(LogEntry(3, "transfer_in", 900, 2150, "t2", counterparty=A))


def misplace_the_ack(ops: list[Op], logs: dict[str, list[LogEntry]]) -> None:
    ops[2].to_position = 2


def audit_short(ops: list[Op], logs: dict[str, list[LogEntry]]) -> None:
    ops[3].audited = {A: [700, 0], B: [1000, 0]}  # the 300 vanished from the cut


def audit_negative(ops: list[Op], logs: dict[str, list[LogEntry]]) -> None:
    ops[6].audited = {A: [-10, 710], B: [1250, 50]}


def credit_from_nowhere(ops: list[Op], logs: dict[str, list[LogEntry]]) -> None:
    logs[A][3] = LogEntry(3, "transfer_in", 60, 760, "t3", counterparty=B)


@pytest.mark.parametrize(("doctor", "check_name", "fragment"), [
    (drop_credit, "transfer", "never credited"),
    (double_credit, "exactly-once", "2 credits"),
    (credit_the_refused, "transfer", "refused"),
    (misplace_the_ack, "durability", "acknowledged at positions 1 and 2"),
    (audit_short, "audit", "hold 1700"),
    (audit_negative, "no-overdraft", "negative"),
    (credit_from_nowhere, "conservation", "t3"),
])
def test_each_broken_transfer_promise_is_caught(
    doctor: Callable[[list[Op], dict[str, list[LogEntry]]], None], check_name: str,
    fragment: str,
) -> None:
    ops, logs = consistent()
    doctor(ops, logs)
    found = violations(ops, logs)
    assert any(v.startswith(f"[{check_name}]") and fragment in v for v in found), found
