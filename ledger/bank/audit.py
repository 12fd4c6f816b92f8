"""The audit: every balance and the money in flight, as one consistent cut of the bank.

A node's applied state is a cut of every account's log, and a consistent one: a
credit applies only after its debit, a settlement only after its credit (the state
machine holds entries back until then). So, read with nothing applied meanwhile
(the bank pauses applying while an audit reads, a page at a time, letting the node
serve between pages), it adds up: balances plus the money in flight, debited and
neither credited nor refunded, are what was opened plus deposited minus withdrawn.

In flight is found from the pending table alone (transfers debited and not settled
or refunded), each with one look at its credit's decision: what is pending costs,
not what is stored. Sums are Python ints, which cannot overflow.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from ledger import errors
from ledger.accounts import Kind, Operation, decision_key
from ledger.bank import codec
from ledger.storage.base import Store

PAGE_ROWS = 1_000  # rows read from the store at a time
DEFAULT_PAGE_ACCOUNTS = 1_000  # balances per page of an audit's answer
MAX_PAGE_ACCOUNTS = 10_000


def check_page_size(page_size: int) -> int:
    """Balances per page: 0 means the default; more than the maximum is an error."""
    if page_size == 0:
        return DEFAULT_PAGE_ACCOUNTS
    if not 1 <= page_size <= MAX_PAGE_ACCOUNTS:
        raise errors.InvalidRequest(f"page_size {page_size} must be between 0 (default "
                                    f"{DEFAULT_PAGE_ACCOUNTS}) and {MAX_PAGE_ACCOUNTS}")
    return page_size


@dataclass(frozen=True, slots=True)
class AuditedAccount:
    account_id: str
    balance: int
    position: int  # the last operation the balance reflects
    in_flight: int  # what it sent that is not credited or refunded yet, in this cut


@dataclass(frozen=True, slots=True)
class Audit:
    accounts: list[AuditedAccount]  # every open account, sorted by id
    transfers_in_flight: int

    @property
    def balances(self) -> int:
        return sum(account.balance for account in self.accounts)

    @property
    def in_flight(self) -> int:
        return sum(account.in_flight for account in self.accounts)

    @property
    def total(self) -> int:
        return self.balances + self.in_flight


async def take_audit(store: Store) -> Audit:
    """The cut this node has applied. The caller keeps applying paused while it runs
    (it yields between pages): that is what makes it one instant."""
    in_flight, transfers = await _in_flight(store)
    accounts: list[AuditedAccount] = []
    start = b""
    while True:
        rows = store.app_range("applied", start, b"\xff", PAGE_ROWS)
        for key, raw in rows:
            state = codec.decode_account(raw).state
            if state.opened:
                account = key.decode()
                accounts.append(AuditedAccount(account, state.balance, state.operations - 1,
                                               in_flight.get(account, 0)))
        if len(rows) < PAGE_ROWS:
            return Audit(accounts, transfers)
        start = rows[-1][0] + b"\x00"
        await asyncio.sleep(0)  # let the node serve (applying is paused meanwhile)


async def _in_flight(store: Store) -> tuple[dict[str, int], int]:
    """Per source account, the pending transfers' money whose credit has not applied
    (not yet, or it bounced and the refund has not); and how many transfers that is."""
    by_source: dict[str, int] = {}
    transfers = 0
    start = b""
    while True:
        rows = store.app_range("pending", start, b"\xff", PAGE_ROWS)
        sent = []
        for key, raw in rows:
            source, _, request_id = key.decode().partition("\x00")
            transfer, _ = codec.decode_pending(raw, request_id)
            credit = Operation(Kind.TRANSFER_IN, transfer.amount, request_id,
                               counterparty=source)
            key_there = decision_key(credit)
            assert key_there is not None
            sent.append((source, transfer.amount, request_id,
                         codec.decision_store_key(transfer.to_account, key_there)))
        credits = store.app_get_many("requests", [where for *_, where in sent])
        for (source, amount, request_id, _), raw in zip(sent, credits, strict=True):
            if raw is not None and not codec.decode_decision(raw, request_id).rejected:
                continue  # credited: the money is in the destination's balance
            by_source[source] = by_source.get(source, 0) + amount
            transfers += 1
        if len(rows) < PAGE_ROWS:
            return by_source, transfers
        start = rows[-1][0] + b"\x00"
        await asyncio.sleep(0)
