"""The bank's answers as plain values (requests are `ledger.accounts.WriteRequest`).

The servicers and the forwarder convert them to and from the public API's messages;
nothing in the bank sees a protobuf type of the public API.
"""

from __future__ import annotations

from dataclasses import dataclass

from ledger.accounts import Kind


@dataclass(frozen=True, slots=True)
class TransactionResult:
    account_id: str
    position: int  # the operation's number in the account's history
    balance: int  # the balance right after it
    duplicate: bool  # the request id had already been applied; nothing new was written


@dataclass(frozen=True, slots=True)
class Balance:
    account_id: str
    balance: int
    position: int  # the last operation the balance reflects


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One numbered operation of an account's history (applied or refused)."""

    position: int
    kind: Kind
    amount: int
    balance_after: int
    request_id: str
    memo: str
    rejected: bool  # refused when applied: the balance did not change
    reject_reason: str
    recorded_at_ms: int  # the proposing node's wall clock; informational only
    principal: str = ""  # who asked for it ("" for operations recorded before principals)
    counterparty: str = ""  # a transfer's other account
