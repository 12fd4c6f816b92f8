"""The checker: reads a run's whole history and every replica's final log.

It holds the run to the ledger's promises:

- convergence and agreement: every replica lists the same history for every account;
- every acknowledged write is in the log exactly once, at the position its reply
  named, with its request id; a refusal is there once, as a refused entry; a failed
  operation added nothing; an indeterminate one is there at most once; no request
  id is listed twice;
- replaying each log gives the balances the replies reported and the log records,
  the same verdicts (no refusal the balance allowed), and never a negative
  balance; money is conserved: every entry is a write some client sent, for the
  kind and amount it sent;
- per account, linearizability: a write acknowledged before another was invoked
  sits at a lower position, and every STRONG read saw every write acknowledged
  before it began (and found the account if one was); no read, STRONG or LOCAL,
  saw a write invoked after it ended (an acknowledged transfer's credit counts as
  a write on its destination);
- transfers (`ledger.chaos.transfer_checks`): each debited once and credited once,
  refused ones never credited, none half done once the cluster is idle, and every
  audit a consistent cut in which the vaults hold exactly what they were opened with.

Pure: a RunRecord in, a list of violations out.
"""

from __future__ import annotations

from collections import defaultdict

from ledger.accounts import MAX_BALANCE
from ledger.chaos.history import FAILED, INDETERMINATE, OK, REFUSED, LogEntry, Op, RunRecord
from ledger.chaos.transfer_checks import Request, Violation, check_audits, check_transfers

__all__ = ["Violation", "check"]

KIND_IN_LOG = {"open": "open", "deposit": "deposit", "withdraw": "withdrawal",
               "transfer": "transfer_out", "credit": "transfer_in"}


def check(record: RunRecord) -> list[Violation]:
    violations: list[Violation] = []
    log = _agreed_logs(record, violations)
    requests = _requests(record.ops)
    for account, entries in sorted(log.items()):
        _check_log(account, entries, violations)
        _check_provenance(account, entries, requests, violations)
    for request in requests.values():
        _check_request(request, log.get(request.account, []), violations)
    _check_real_time_order(requests, log, violations)
    _check_reads(record.ops, requests, log, violations)
    check_transfers(requests, log, violations)
    check_audits(record.ops, log, violations)
    return violations


# ----------------------------------------------------------------- agreement


def _agreed_logs(record: RunRecord, out: list[Violation]) -> dict[str, list[LogEntry]]:
    """The log every replica agrees on, per account; divergence is a violation."""
    accounts = sorted({a for logs in record.logs.values() for a in logs})
    agreed: dict[str, list[LogEntry]] = {}
    for account in accounts:
        versions: dict[tuple[LogEntry, ...], list[str]] = defaultdict(list)
        for replica, logs in sorted(record.logs.items()):
            versions[tuple(logs.get(account, []))].append(replica)
        longest = max(versions, key=len)
        agreed[account] = list(longest)
        if len(versions) > 1:
            shapes = "; ".join(f"{', '.join(replicas)}: {len(entries)} entries"
                               for entries, replicas in versions.items())
            first = next(i for i in range(len(longest))
                         if len({v[i] if i < len(v) else None for v in versions}) > 1)
            out.append(Violation("agreement", account,
                                 f"replicas hold different histories from position {first} "
                                 f"({shapes})"))
    return agreed


# ----------------------------------------------------------------- the logs


def _check_log(account: str, entries: list[LogEntry], out: list[Violation]) -> None:
    """Positions 0..n-1, an open first, each balance replayed, never negative."""
    seen: dict[tuple[str, str], int] = {}
    balance = 0
    opening = 0
    moved = dict.fromkeys(("deposit", "withdrawal", "transfer_out", "transfer_in",
                           "transfer_refund"), 0)
    for expected_position, entry in enumerate(entries):
        where = f"position {entry.position}"
        if entry.position != expected_position:
            out.append(Violation("log", account, f"{where} where {expected_position} belongs"))
        key = _decision_key(entry)
        if key in seen:
            out.append(Violation("exactly-once", account,
                                 f"request id {entry.request_id!r} listed at positions "
                                 f"{seen[key]} and {entry.position}"))
        seen[key] = entry.position
        # What its transfers may still have pending, at most: counted against its limit.
        pending_at_most = moved["transfer_out"] - moved["transfer_refund"]
        if expected_position == 0:
            if entry.kind != "open":
                out.append(Violation("log", account, f"{where} is a {entry.kind}, not the open"))
            balance = opening = entry.amount
        elif entry.rejected:
            if entry.kind not in ("deposit", "withdrawal", "transfer_out", "transfer_in"):
                out.append(Violation("log", account, f"{where} is a refused {entry.kind}"))
            elif (entry.amount <= balance if entry.kind in ("withdrawal", "transfer_out")
                  else balance + pending_at_most + entry.amount <= MAX_BALANCE):
                out.append(Violation("replay", account,
                                     f"{where} refuses a {entry.kind} of {entry.amount} that "
                                     f"the balance of {balance} allowed"))
        elif entry.kind in moved:
            moved[entry.kind] += entry.amount
            balance += -entry.amount if entry.kind in ("withdrawal", "transfer_out") \
                else entry.amount
        else:
            out.append(Violation("log", account, f"{where} is a second {entry.kind}"))
        if balance < 0:
            out.append(Violation("no-overdraft", account, f"balance {balance} after {where}"))
        if entry.balance_after != balance:
            out.append(Violation("replay", account,
                                 f"{where} records balance {entry.balance_after}, replay "
                                 f"gives {balance}"))
    final = opening + moved["deposit"] - moved["withdrawal"] + moved["transfer_in"] \
        - moved["transfer_out"] + moved["transfer_refund"]
    if entries and entries[-1].balance_after != final:
        out.append(Violation("conservation", account,
                             f"final balance {entries[-1].balance_after} != opening {opening}"
                             f" + what its entries moved ({moved})"))


def _decision_key(entry: LogEntry) -> tuple[str, str]:
    """What a request id is decided once under: a credit's by its source too, a refund's
    apart from the debit that shares its id."""
    if entry.kind == "transfer_in":
        return (f"credit from {entry.counterparty}", entry.request_id)
    if entry.kind == "transfer_refund":
        return ("refund", entry.request_id)
    return ("request", entry.request_id)


def _check_provenance(account: str, entries: list[LogEntry],
                      requests: dict[tuple[str, str], Request], out: list[Violation]) -> None:
    """Conservation against the history: each entry is a write a client sent, as it sent it.

    (Replay alone cannot break conservation: a log that replays cleanly adds up by
    construction. Money comes from nowhere when the log holds a write no client
    made, or one for another kind or amount than the client asked.)
    """
    for entry in entries:
        request = requests.get((account, entry.request_id))
        where = f"position {entry.position}"
        if request is None:
            out.append(Violation("conservation", account,
                                 f"{where} holds a {entry.kind} of {entry.amount} under request "
                                 f"id {entry.request_id!r}, which no client sent"))
        elif (entry.kind != ("transfer_refund" if entry.kind == "transfer_refund"
                             and request.kind == "transfer" else KIND_IN_LOG[request.kind])
              or request.amount != entry.amount
              or request.counterparty != entry.counterparty):
            out.append(Violation("conservation", account,
                                 f"{where} holds request {entry.request_id!r} as a "
                                 f"{entry.kind} of {entry.amount}"
                                 f"{' with ' + entry.counterparty if entry.counterparty else ''}"
                                 f"; the client sent a {request.kind} of {request.amount}"))


# --------------------------------------------------------------- the requests


def _requests(ops: list[Op]) -> dict[tuple[str, str], Request]:
    """Each write request's attempts; a transfer is also a "credit" request on its
    destination (sharing the transfer's attempts: it is acknowledged with them)."""
    requests: dict[tuple[str, str], Request] = {}
    for op in ops:
        if not op.is_write:
            continue
        key = (op.account, op.request_id)
        if key not in requests:
            requests[key] = Request(op.account, op.request_id, op.kind, op.amount, [],
                                    op.counterparty)
            if op.kind == "transfer":
                requests[(op.counterparty, op.request_id)] = Request(
                    op.counterparty, op.request_id, "credit", op.amount,
                    requests[key].attempts, op.account)
        requests[key].attempts.append(op)
    return requests


def _check_request(request: Request, entries: list[LogEntry], out: list[Violation]) -> None:
    if request.kind == "credit":
        return  # a transfer's credit: see check_transfers
    account, rid = request.account, request.request_id
    found = [e for e in entries if e.request_id == rid and e.kind == KIND_IN_LOG[request.kind]]
    outcomes = {op.outcome for op in request.attempts}
    entry = found[0] if found else None
    for op in request.attempts:
        if op.outcome == OK:
            if entry is None:
                out.append(Violation("durability", account,
                                     f"acknowledged {op.kind} {rid!r} is not in the log"))
                return
            if entry.rejected or entry.kind != KIND_IN_LOG[op.kind] or entry.amount != op.amount:
                out.append(Violation("durability", account,
                                     f"acknowledged {op.kind} {rid!r} of {op.amount} is logged "
                                     f"as {'refused ' if entry.rejected else ''}{entry.kind} "
                                     f"of {entry.amount}"))
            if op.position != entry.position or op.balance != entry.balance_after:
                out.append(Violation("durability", account,
                                     f"{op.kind} {rid!r} was acknowledged at position "
                                     f"{op.position} with balance {op.balance}; the log has "
                                     f"position {entry.position}, balance {entry.balance_after}"))
        elif op.outcome == REFUSED:
            if entry is None or not entry.rejected:
                out.append(Violation("exactly-once", account,
                                     f"refused {op.kind} {rid!r} is not in the log as a refusal"))
            elif op.position is not None and op.position != entry.position:
                out.append(Violation("durability", account,
                                     f"{op.kind} {rid!r} was refused at position {op.position}; "
                                     f"the log has the refusal at position {entry.position}"))
    if FAILED in outcomes and entry is not None and not outcomes & {OK, REFUSED, INDETERMINATE}:
        out.append(Violation("validation", account,
                             f"failed {request.kind} {rid!r} wrote position {entry.position}"))


# ------------------------------------------------------------ linearizability


def _position(request: Request, entries: list[LogEntry]) -> int | None:
    """Where the request's own entry sits (for a transfer, its debit; not its refund)."""
    kind = KIND_IN_LOG[request.kind]
    return next((e.position for e in entries
                 if e.request_id == request.request_id and e.kind == kind), None)


def _check_real_time_order(
    requests: dict[tuple[str, str], Request], log: dict[str, list[LogEntry]],
    out: list[Violation],
) -> None:
    """A write acknowledged before another was invoked sits at a lower position."""
    by_account: dict[str, list[tuple[int, float, float | None, str]]] = defaultdict(list)
    for request in requests.values():
        position = _position(request, log.get(request.account, []))
        if position is not None:
            by_account[request.account].append(
                (position, request.first_invoke_ms, request.first_ack_ms(), request.request_id))
    for account, placed in by_account.items():
        placed.sort(key=lambda p: (p[0], p[1]))  # ack_ms may be None: never compare it
        latest_invoke = float("-inf")
        latest_id = ""
        for position, invoke_ms, ack_ms, request_id in placed:
            if ack_ms is not None and latest_invoke > ack_ms:
                out.append(Violation("linearizability", account,
                                     f"{request_id!r} (position {position}) was acknowledged "
                                     f"at {ack_ms:.0f} ms, before {latest_id!r} was invoked at "
                                     f"{latest_invoke:.0f} ms, yet sits after it"))
            if invoke_ms > latest_invoke:
                latest_invoke, latest_id = invoke_ms, request_id


def _check_reads(
    ops: list[Op], requests: dict[tuple[str, str], Request],
    log: dict[str, list[LogEntry]], out: list[Violation],
) -> None:
    """STRONG reads see every write acknowledged before them; every read a real state."""
    acked: dict[str, list[tuple[float, int]]] = defaultdict(list)
    invoked: dict[str, list[tuple[float, int]]] = defaultdict(list)
    for request in requests.values():
        entries = log.get(request.account, [])
        position = _position(request, entries)
        if position is None:
            continue
        ack_ms = request.first_ack_ms()
        if ack_ms is not None:
            acked[request.account].append((ack_ms, position))
        invoked[request.account].append((request.first_invoke_ms, position))
    for op in ops:
        if op.kind == "read" and op.outcome == FAILED and op.consistency == "strong":
            earlier = [p for ack_ms, p in acked[op.account] if ack_ms < op.invoke_ms]
            if earlier:  # NOT_FOUND, yet a write on the account was decided before it began
                out.append(Violation("linearizability", op.account,
                                     f"STRONG read {op.index} at {op.invoke_ms:.0f} ms found no "
                                     f"account, missing position {max(earlier)} acknowledged "
                                     "before the read began"))
            continue
        if op.kind != "read" or op.outcome != OK or op.position is None:
            continue
        entries = log.get(op.account, [])
        if not 0 <= op.position < len(entries) or \
                entries[op.position].balance_after != op.balance:
            out.append(Violation("read", op.account,
                                 f"read {op.index} returned balance {op.balance} at position "
                                 f"{op.position}, which the log does not hold"))
            continue
        assert op.complete_ms is not None
        future = [p for invoke_ms, p in invoked[op.account]
                  if invoke_ms > op.complete_ms and p <= op.position]
        if future:  # not even a LOCAL read can see a write before it was sent
            out.append(Violation("linearizability", op.account,
                                 f"{op.consistency.upper()} read {op.index} returned position "
                                 f"{op.position}, which holds a write invoked after the read "
                                 "ended"))
        if op.consistency != "strong":
            continue
        missed = [p for ack_ms, p in acked[op.account] if ack_ms < op.invoke_ms and p > op.position]
        if missed:
            out.append(Violation("linearizability", op.account,
                                 f"STRONG read {op.index} at {op.invoke_ms:.0f} ms returned "
                                 f"position {op.position}, missing position {max(missed)} "
                                 "acknowledged before the read began"))
