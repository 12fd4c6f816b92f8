"""Ledger records <-> bytes: log entries, account records, request decisions, history.

The only module that knows both the accounts domain and the storage encoding.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from google.protobuf.message import DecodeError

from ledger.accounts import MAX_AMOUNT, AccountState, DecisionKey, Kind, Operation, Pending
from ledger.accounts.validation import ACCOUNT_ID, MAX_MEMO_CHARS, REQUEST_ID
from ledger.bank.model import HistoryEntry
from ledger.node.peer_limits import MAX_SLOT
from ledger.security.principal import check_name
from ledger.v1 import records_pb2

#: How each kind is stored (the records' own enum, not the public API's).
KIND_TO_RECORD = {
    Kind.OPEN: records_pb2.OPERATION_KIND_OPEN,
    Kind.DEPOSIT: records_pb2.OPERATION_KIND_DEPOSIT,
    Kind.WITHDRAWAL: records_pb2.OPERATION_KIND_WITHDRAWAL,
    Kind.TRANSFER_OUT: records_pb2.OPERATION_KIND_TRANSFER_OUT,
    Kind.TRANSFER_IN: records_pb2.OPERATION_KIND_TRANSFER_IN,
    Kind.TRANSFER_REFUND: records_pb2.OPERATION_KIND_TRANSFER_REFUND,
    Kind.TRANSFER_SETTLE: records_pb2.OPERATION_KIND_TRANSFER_SETTLE,
}
RECORD_TO_KIND = {value: kind for kind, value in KIND_TO_RECORD.items()}


def encode_entry(operations: Sequence[Operation], nonce: int = 0) -> bytes:
    """The value proposed for one log slot; `nonce` tells proposals apart."""
    return records_pb2.LogEntry(operations=[
        records_pb2.LogOperation(kind=KIND_TO_RECORD[op.kind], amount=op.amount,
                                 request_id=op.request_id, memo=op.memo,
                                 recorded_at_ms=op.recorded_at_ms, principal=op.principal,
                                 counterparty=op.counterparty,
                                 counterparty_slot=op.counterparty_slot)
        for op in operations
    ], nonce=nonce).SerializeToString()


class MalformedEntry(ValueError):
    """A chosen value that is not a ledger entry (it can only be a no-op)."""


def decode_entry(value: bytes) -> list[Operation]:
    """The operations of a chosen value; MalformedEntry if it is not one the bank proposes.

    Amounts are checked here, not left to `apply_operation`'s assertions: a chosen
    value outside the domain must be skipped alike on every replica, never crash them.
    """
    try:
        entry = records_pb2.LogEntry.FromString(value)
        operations = [Operation(RECORD_TO_KIND[op.kind], op.amount, op.request_id, op.memo,
                                op.recorded_at_ms, op.principal, op.counterparty,
                                op.counterparty_slot)
                      for op in entry.operations]
    except (DecodeError, KeyError) as error:
        raise MalformedEntry(f"not a ledger entry: {error!r}") from error
    for operation in operations:
        lowest = 0 if operation.kind is Kind.OPEN else 1
        if not lowest <= operation.amount <= MAX_AMOUNT:
            raise MalformedEntry(f"not a ledger entry: a {operation.kind.value} of "
                                 f"{operation.amount} is out of range")
        # What the bank writes under these (request keys, history) must fit its tables.
        if not REQUEST_ID.fullmatch(operation.request_id):
            raise MalformedEntry(f"not a ledger entry: request id {operation.request_id[:80]!r}")
        if len(operation.memo) > MAX_MEMO_CHARS:
            raise MalformedEntry(f"not a ledger entry: a memo of {len(operation.memo)} "
                                 "characters")
        if operation.principal and not is_principal_name(operation.principal):
            raise MalformedEntry(f"not a ledger entry: principal {operation.principal[:80]!r}")
        if operation.kind.in_transfer:
            if not ACCOUNT_ID.fullmatch(operation.counterparty):
                raise MalformedEntry("not a ledger entry: a transfer's other account "
                                     f"{operation.counterparty[:80]!r}")
        elif operation.counterparty:
            raise MalformedEntry(f"not a ledger entry: a {operation.kind.value} names another "
                                 "account")
        follows = operation.counterparty_slot
        if follows and (operation.kind not in (Kind.TRANSFER_IN, Kind.TRANSFER_SETTLE)
                        or not 0 < follows <= MAX_SLOT):
            raise MalformedEntry(f"not a ledger entry: a {operation.kind.value} that follows "
                                 f"slot {follows} of its other account")
    return operations


def is_principal_name(name: str) -> bool:
    """Can `name` be a recorded principal? (Empty is allowed where the caller says so:
    entries written before principals were recorded, and writes made inside the node.)"""
    try:
        check_name(name)
    except ValueError:
        return False
    return True


@dataclass(frozen=True, slots=True)
class StoredAccount:
    """An account's state and the log slot it reflects."""

    state: AccountState
    applied_slot: int  # -1: nothing applied


def encode_account(account: StoredAccount) -> bytes:
    state = account.state
    return records_pb2.AccountRecord(
        applied_slot=account.applied_slot, opened=state.opened, balance=state.balance,
        operations=state.operations, pending_out=state.pending_out,
    ).SerializeToString()


def decode_account(raw: bytes | None) -> StoredAccount:
    if raw is None:
        return StoredAccount(AccountState(), -1)
    record = records_pb2.AccountRecord.FromString(raw)
    state = AccountState(record.opened, record.balance, record.operations, record.pending_out)
    return StoredAccount(state, record.applied_slot)


@dataclass(frozen=True, slots=True)
class Decision:
    """How a request id was decided: by the first operation carrying it."""

    position: int
    operation: Operation
    rejected: bool
    reject_reason: str
    balance_after: int
    slot: int  # the log slot of the entry that carried it


def encode_decision(decision: Decision) -> bytes:
    op = decision.operation
    return records_pb2.RequestRecord(
        position=decision.position, kind=KIND_TO_RECORD[op.kind], amount=op.amount, memo=op.memo,
        rejected=decision.rejected, reject_reason=decision.reject_reason,
        balance_after=decision.balance_after, slot=decision.slot, counterparty=op.counterparty,
    ).SerializeToString()


def decode_decision(raw: bytes, request_id: str) -> Decision:
    record = records_pb2.RequestRecord.FromString(raw)
    operation = Operation(RECORD_TO_KIND[record.kind], record.amount, request_id, record.memo,
                          counterparty=record.counterparty)
    return Decision(record.position, operation, record.rejected, record.reject_reason,
                    record.balance_after, record.slot)


def encode_history(decision: Decision) -> bytes:
    """The stored history entry of a decided operation."""
    op = decision.operation
    return records_pb2.HistoryRecord(
        position=decision.position, kind=KIND_TO_RECORD[op.kind], amount=op.amount,
        balance_after=decision.balance_after, request_id=op.request_id, memo=op.memo,
        rejected=decision.rejected, reject_reason=decision.reject_reason,
        recorded_at_ms=op.recorded_at_ms, principal=op.principal, counterparty=op.counterparty,
    ).SerializeToString()


def decode_history(raw: bytes) -> HistoryEntry:
    record = records_pb2.HistoryRecord.FromString(raw)
    return HistoryEntry(record.position, RECORD_TO_KIND[record.kind], record.amount,
                        record.balance_after, record.request_id, record.memo, record.rejected,
                        record.reject_reason, record.recorded_at_ms, record.principal,
                        record.counterparty)


def encode_pending(pending: Pending, slot: int, recorded_at_ms: int) -> bytes:
    return records_pb2.PendingRecord(to_account=pending.to_account, amount=pending.amount,
                                     slot=slot, recorded_at_ms=recorded_at_ms,
                                     memo=pending.memo, principal=pending.principal,
                                     ).SerializeToString()


def decode_pending(raw: bytes, request_id: str) -> tuple[Pending, int]:
    """A pending transfer and when its debit was proposed (the proposer's wall clock)."""
    record = records_pb2.PendingRecord.FromString(raw)
    return (Pending(request_id, record.to_account, record.amount, record.memo,
                    record.principal, record.slot), record.recorded_at_ms)


# Keys: the account, a NUL (account ids never contain one), then the rest.

def account_key(account: str) -> bytes:
    return account.encode()


def history_key(account: str, position: int) -> bytes:
    return account.encode() + b"\x00" + position.to_bytes(8, "big")


def request_key(account: str, request_id: str) -> bytes:
    return account.encode() + b"\x00" + request_id.encode()


def decision_store_key(account: str, key: DecisionKey) -> bytes:
    """Where a decision is recorded. A credit's and a refund's keys start with a byte no
    client request id can hold (they are printable), then for a credit the source
    account, then the transfer's id."""
    space, source, request_id = key
    if space == "credit":
        return account.encode() + b"\x00\x01" + source.encode() + b"\x00" + request_id.encode()
    if space == "refund":
        return account.encode() + b"\x00\x02" + request_id.encode()
    return request_key(account, request_id)


def pending_key(account: str, request_id: str) -> bytes:
    """A pending transfer's key in its own table: the shape of a request's key."""
    return request_key(account, request_id)
