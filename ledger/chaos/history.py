"""What the workload did and saw: one record per client operation, in JSON lines."""

from __future__ import annotations

import json
import pathlib
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

# Outcomes of an operation, as the client saw them.
OK = "ok"  # acknowledged (a write applied, or a read answered)
REFUSED = "refused"  # FAILED_PRECONDITION: decided in the log as a refused entry
FAILED = "failed"  # INVALID_ARGUMENT, NOT_FOUND, ALREADY_EXISTS: nothing written
INDETERMINATE = "indeterminate"  # UNAVAILABLE, DEADLINE_EXCEEDED: may or may not have happened

WRITES = ("open", "deposit", "withdraw", "transfer")


@dataclass
class Op:
    """One attempt of one client operation. Retries of a write reuse its request_id."""

    index: int
    client: int
    node: str
    kind: str  # open | deposit | withdraw | transfer | read | audit
    account: str  # a transfer's source ("" for an audit)
    invoke_ms: float
    amount: int = 0  # the opening balance for an open
    request_id: str = ""
    memo: str = ""
    consistency: str = ""  # reads: strong | local
    complete_ms: float | None = None
    outcome: str = ""
    position: int | None = None
    balance: int | None = None
    duplicate: bool = False
    error: str = ""
    counterparty: str = ""  # a transfer's destination
    to_position: int | None = None  # an acknowledged transfer's credit, in the destination
    bounced: bool = False
    # An audit: per transfer-only account in the node's cut, [balance, money in flight].
    audited: dict[str, list[int]] = field(default_factory=dict)

    @property
    def is_write(self) -> bool:
        return self.kind in WRITES


@dataclass(frozen=True)
class LogEntry:
    """An entry of an account's history as a replica lists it."""

    position: int
    kind: str  # open | deposit | withdrawal | transfer_out | transfer_in | transfer_refund
    amount: int
    balance_after: int
    request_id: str
    rejected: bool = False
    counterparty: str = ""  # a transfer's other account


@dataclass
class FaultEvent:
    at_ms: float
    kind: str  # kill | restart | pause | resume | partition | loss | heal
    detail: str = ""


@dataclass
class RunRecord:
    """Everything a run produced, as the checker and the report need it."""

    ops: list[Op] = field(default_factory=list)
    faults: list[FaultEvent] = field(default_factory=list)
    # replica -> account -> its history, read with LOCAL consistency after healing
    logs: dict[str, dict[str, list[LogEntry]]] = field(default_factory=dict)


def write_jsonl(path: pathlib.Path, records: Iterable[object]) -> None:
    with path.open("w") as out:
        for record in records:
            out.write(json.dumps(asdict(record)) + "\n")  # type: ignore[call-overload]


def read_ops(path: pathlib.Path) -> list[Op]:
    return [Op(**json.loads(line)) for line in path.read_text().splitlines() if line]
