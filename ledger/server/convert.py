"""The bank's answers -> the public API's messages (the server side of the conversion;
what both ends share lives in `ledger.api.wire`)."""

from __future__ import annotations

from ledger.api.wire import KIND_TO_ENTRY_KIND
from ledger.bank.model import Balance, HistoryEntry, TransactionResult
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
                    principal=entry.principal)


def strong(consistency: int) -> bool:
    """STRONG unless the caller asked for LOCAL (unspecified means STRONG)."""
    return consistency != pb.CONSISTENCY_LOCAL
