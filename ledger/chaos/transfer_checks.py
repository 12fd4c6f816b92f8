"""The checker's transfer half: the bank workload's promises, over the history and logs.

- every transfer debited at most once; refused, never credited; debited, credited
  exactly once (or its credit bounced and the money was refunded exactly once), so
  none is half done once the cluster is idle; acknowledged, at the positions its
  reply named;
- every audit read during the run is a consistent cut: the vaults (accounts that
  only take transfers) it holds add up, balances plus what they have in flight, to
  exactly what they were opened with, and no balance or amount in flight is negative;
- at the end, the vaults' balances add up to what they were opened with.

Pure: requests and agreed logs in, violations appended.
"""

from __future__ import annotations

from dataclasses import dataclass

from ledger.chaos.history import OK, REFUSED, LogEntry, Op

VAULT_PREFIX = "vault-"  # the workload's transfer-only accounts


@dataclass(frozen=True)
class Violation:
    check: str  # which promise was broken
    account: str
    detail: str

    def __str__(self) -> str:
        return f"[{self.check}] {self.account}: {self.detail}"


@dataclass
class Request:
    """All attempts of one write request (one request id on one account)."""

    account: str
    request_id: str
    kind: str  # a client's kind, or "credit": a transfer's, on its destination
    amount: int
    attempts: list[Op]
    counterparty: str = ""  # a transfer's destination; a credit's source

    @property
    def first_invoke_ms(self) -> float:
        return min(op.invoke_ms for op in self.attempts)

    def first_ack_ms(self) -> float | None:
        """When the client first learned the request was decided (applied or refused)."""
        done = [op.complete_ms for op in self.attempts
                if op.outcome in (OK, REFUSED) and op.complete_ms is not None]
        return min(done) if done else None


def check_transfers(requests: dict[tuple[str, str], Request], log: dict[str, list[LogEntry]],
                    out: list[Violation]) -> None:
    for request in requests.values():
        if request.kind == "transfer":
            _check_transfer(request, log, out)


def _check_transfer(request: Request, log: dict[str, list[LogEntry]],
                    out: list[Violation]) -> None:
    source, target, rid = request.account, request.counterparty, request.request_id
    here = log.get(source, [])
    debits = [e for e in here if e.request_id == rid and e.kind == "transfer_out"]
    refunds = [e for e in here if e.request_id == rid and e.kind == "transfer_refund"]
    credits = [e for e in log.get(target, []) if e.request_id == rid
               and e.kind == "transfer_in" and e.counterparty == source]
    what = f"transfer {rid!r} of {request.amount} to {target}"
    if len(debits) > 1 or len(credits) > 1 or len(refunds) > 1:
        out.append(Violation("exactly-once", source,
                             f"{what}: {len(debits)} debits, {len(credits)} credits, "
                             f"{len(refunds)} refunds"))
        return
    debit = debits[0] if debits else None
    credit = credits[0] if credits else None
    if debit is None or debit.rejected:
        if credit is not None or refunds:
            out.append(Violation("transfer", source,
                                 f"{what}: credited or refunded, yet "
                                 f"{'never debited' if debit is None else 'refused'}"))
    elif credit is None:
        out.append(Violation("transfer", source,
                             f"{what}: debited at position {debit.position}, never credited "
                             "(half done with the cluster idle)"))
    elif credit.rejected != bool(refunds):
        out.append(Violation("transfer", source,
                             f"{what}: its credit {'bounced' if credit.rejected else 'applied'}"
                             f", and it was {'' if refunds else 'not '}refunded"))
    for op in request.attempts:
        if op.outcome == OK:
            if debit is None or debit.rejected or credit is None:
                out.append(Violation("durability", source,
                                     f"acknowledged {what} is not debited and credited"))
            elif (op.position, op.to_position, op.bounced) != (
                    debit.position, credit.position, credit.rejected):
                out.append(Violation("durability", source,
                                     f"{what} was acknowledged at positions {op.position} and "
                                     f"{op.to_position}; the logs have {debit.position} and "
                                     f"{credit.position}"))
        elif op.outcome == REFUSED and (debit is None or not debit.rejected):
            out.append(Violation("exactly-once", source,
                                 f"refused {what} is not in the log as a refusal"))


def check_audits(ops: list[Op], log: dict[str, list[LogEntry]], out: list[Violation]) -> None:
    """Every audit a consistent cut of the vaults; the vaults whole at the end."""
    opened = {op.account: op.amount for op in ops
              if op.kind == "open" and op.outcome == OK and op.account.startswith(VAULT_PREFIX)}
    for op in ops:
        if op.kind != "audit" or op.outcome != OK:
            continue
        held = sum(balance + in_flight for balance, in_flight in op.audited.values())
        expected = sum(opened.get(account, 0) for account in op.audited)
        if held != expected:
            out.append(Violation("audit", op.node,
                                 f"audit {op.index} at {op.invoke_ms:.0f} ms: the vaults hold "
                                 f"{held} with what is in flight, but were opened with "
                                 f"{expected}"))
        negative = {a: v for a, v in op.audited.items() if min(v) < 0}
        if negative:
            out.append(Violation("no-overdraft", op.node,
                                 f"audit {op.index}: negative balance or in flight: {negative}"))
    final = {a: entries[-1].balance_after for a, entries in log.items()
             if a.startswith(VAULT_PREFIX) and entries}
    if sum(final.values()) != sum(opened.get(a, 0) for a in final):
        out.append(Violation("conservation", "vaults",
                             f"the vaults end with {sum(final.values())}, opened with "
                             f"{sum(opened.get(a, 0) for a in final)}"))
