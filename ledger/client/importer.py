"""Importing a CSV of transactions through the batch API, safely re-runnable.

Rows: `account,kind,amount,memo[,request_id][,to_account]` with a header line; kind
is open, deposit, withdraw or transfer (from `account` to `to_account`). Without a
request_id column, a row's id is derived from the import's name (the file's name
unless the user gives one), the row's own content (account, kind, amount, memo, and a
transfer's to_account) and
its occurrence among identical rows of the file. So running the same import again
applies nothing twice, and neither does running it after editing other rows, adding
rows, or re-saving the file (a trailing newline, another line ending): only rows that
changed, or are new, are applied.
"""

from __future__ import annotations

import csv
import hashlib
import io
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from ledger import errors
from ledger.accounts import Kind
from ledger.client.client import BatchWrite, LedgerClient, Transaction
from ledger.client.money import BadAmount, parse_amount

CHUNK_ROWS = 1_000  # rows per batch (one message of the client's write stream)
REQUIRED_COLUMNS = ("account", "kind", "amount")


class BadFile(ValueError):
    """The file cannot be imported at all (no header, missing columns)."""


@dataclass(frozen=True)
class Row:
    number: int  # 1-based, counting the header as row 1 (as a spreadsheet shows it)
    write: BatchWrite


@dataclass(frozen=True)
class RowProblem:
    number: int
    outcome: str  # bad-input | refused | not-found | exists | unknown
    message: str


@dataclass
class ImportReport:
    rows: int = 0
    applied: int = 0
    duplicates: int = 0
    problems: list[RowProblem] = field(default_factory=list)

    def count(self, outcome: str) -> int:
        return sum(1 for p in self.problems if p.outcome == outcome)


def row_request_id(import_name: str, account: str, kind: Kind, amount: int, memo: str,
                   occurrence: int, to_account: str = "") -> str:
    """A row's request id: the same for the same row of the same import, wherever it
    stands in the file and whatever else the file holds (at most 64 characters)."""
    name = hashlib.sha256(import_name.encode()).hexdigest()[:8]
    fields = (account, kind.value, str(amount), memo) + ((to_account,) if to_account else ())
    content = hashlib.sha256("\x1f".join(fields).encode()).hexdigest()[:20]
    return f"import-{name}-{content}-{occurrence}"


def parse(data: bytes, import_name: str) -> tuple[list[Row], list[RowProblem]]:
    """The rows to send, and the rows that cannot be sent (with why)."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise BadFile(f"the file is not UTF-8 text: {error}") from error
    reader = csv.DictReader(io.StringIO(text))
    columns = [c.strip() for c in reader.fieldnames or []]
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise BadFile(f"the header must name the columns account,kind,amount,memo"
                      f"[,request_id][,to_account]; missing: {', '.join(missing)}")
    rows, problems = [], []
    seen: Counter[tuple[str, Kind, int, str, str]] = Counter()  # identical rows so far
    for number, record in enumerate(reader, start=2):
        fields = {k.strip(): (v or "").strip() for k, v in record.items() if k is not None}
        try:
            kind = Kind.parse(fields["kind"])
        except ValueError:
            problems.append(RowProblem(number, "bad-input",
                                       f"kind {fields['kind']!r} is not open, deposit, "
                                       "withdraw or transfer"))
            continue
        to_account = fields.get("to_account", "")
        if (kind is Kind.TRANSFER_OUT) != bool(to_account):
            problems.append(RowProblem(number, "bad-input",
                                       "a transfer names its to_account, and only a transfer"))
            continue
        try:
            amount = parse_amount(fields["amount"], allow_zero=kind is Kind.OPEN)
        except BadAmount as error:
            problems.append(RowProblem(number, "bad-input", str(error)))
            continue
        account, memo = fields["account"], fields.get("memo", "")
        content = (account, kind, amount, memo, to_account)
        seen[content] += 1
        request_id = fields.get("request_id") or row_request_id(
            import_name, account, kind, amount, memo, seen[content], to_account)
        rows.append(Row(number, BatchWrite(kind.value, account, amount, memo, request_id,
                                           to_account)))
    return rows, problems


def chunks(rows: list[Row], size: int = CHUNK_ROWS) -> Iterator[list[Row]]:
    for start in range(0, len(rows), size):
        yield rows[start:start + size]


def import_rows(bank: LedgerClient, rows: list[Row], report: ImportReport,
                retry_for_s: float, on_chunk: Callable[[int], None] = lambda n: None) -> None:
    """Submit rows in chunks; retry undecided ones (same ids) for up to `retry_for_s`."""
    for chunk in chunks(rows):
        pending = chunk
        deadline = time.monotonic() + retry_for_s
        while pending:
            try:
                results = bank.submit([row.write for row in pending])
            except errors.Unavailable:
                results = [errors.Unavailable("no server answered") for _ in pending]
            retry = []
            for row, result in zip(pending, results, strict=True):
                if isinstance(result, errors.Unavailable) and time.monotonic() < deadline:
                    retry.append(row)
                else:
                    _record(report, row, result)
            pending = retry
        on_chunk(len(chunk))


def _record(report: ImportReport, row: Row, result: Transaction | errors.LedgerError) -> None:
    report.rows += 1
    if isinstance(result, Transaction):
        if result.duplicate:
            report.duplicates += 1
        else:
            report.applied += 1
        return
    outcome = {
        errors.Refused: "refused", errors.InvalidRequest: "bad-input",
        errors.AccountNotFound: "not-found", errors.AccountExists: "exists",
    }
    kind = next((name for cls, name in outcome.items() if isinstance(result, cls)), "unknown")
    report.problems.append(RowProblem(row.number, kind, str(result)))
