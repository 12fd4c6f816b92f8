"""The bank's answers -> the public API's messages (the server side of the conversion;
what both ends share lives in `ledger.api.wire`)."""

from __future__ import annotations

from collections.abc import Iterator

from ledger.api.wire import KIND_TO_ENTRY_KIND
from ledger.bank.audit import Audit
from ledger.bank.model import Balance, HistoryEntry, TransactionResult
from ledger.bank.transfers import TransferResult
from ledger.v1 import ledger_pb2 as pb


def transaction_reply(result: TransactionResult, leader: str = "") -> pb.TransactionReply:
    return pb.TransactionReply(account_id=result.account_id, position=result.position,
                               balance=result.balance, duplicate=result.duplicate,
                               leader=leader)


def balance_reply(balance: Balance) -> pb.BalanceReply:
    return pb.BalanceReply(account_id=balance.account_id, balance=balance.balance,
                           position=balance.position)


def history_entry(entry: HistoryEntry) -> pb.Entry:
    return pb.Entry(position=entry.position, kind=KIND_TO_ENTRY_KIND[entry.kind],
                    amount=entry.amount, balance_after=entry.balance_after,
                    request_id=entry.request_id, memo=entry.memo, rejected=entry.rejected,
                    reject_reason=entry.reject_reason, recorded_at_ms=entry.recorded_at_ms,
                    principal=entry.principal, counterparty_account_id=entry.counterparty)


def transfer_reply(result: TransferResult, leader: str = "") -> pb.TransferReply:
    delivery = result.delivery
    return pb.TransferReply(from_account_id=result.from_account,
                            to_account_id=result.to_account,
                            from_position=result.from_position,
                            from_balance=result.from_balance, to_position=delivery.to_position,
                            duplicate=result.duplicate, bounced=delivery.bounced,
                            refund_position=delivery.refund_position, leader=leader)


def strong(consistency: int) -> bool:
    """STRONG unless the caller asked for LOCAL (unspecified means STRONG)."""
    return consistency != pb.CONSISTENCY_LOCAL


def audit_replies(audit: Audit, node_id: str, page_size: int, totals_only: bool
                  ) -> Iterator[pb.AuditReply]:
    """The totals first, then the balances a page at a time (sums as decimal strings)."""
    totals = pb.AuditTotals(accounts=len(audit.accounts), balances=str(audit.balances),
                            in_flight=str(audit.in_flight),
                            transfers_in_flight=audit.transfers_in_flight,
                            total=str(audit.total), node=node_id)
    yield pb.AuditReply(totals=totals)
    if totals_only:
        return
    for start in range(0, len(audit.accounts), page_size):
        yield pb.AuditReply(accounts=[
            pb.AuditedAccount(account_id=a.account_id, balance=a.balance, position=a.position,
                              in_flight=a.in_flight)
            for a in audit.accounts[start:start + page_size]])
