"""How writes, results and typed errors travel in the public API's messages.

Both ends use this one module (the servicers and the forwarder, which calls another
node's Submit, on the server side; the Python client on the other), so they cannot
drift apart: one table of operation kinds, one encoding of a batch operation and of
a per-operation result, one mapping between typed errors and gRPC status codes.
"""

from __future__ import annotations

from collections.abc import Mapping

import grpc

from ledger import errors
from ledger.accounts import Kind, WriteRequest
from ledger.v1 import ledger_pb2 as pb

KIND_TO_ENTRY_KIND = {
    Kind.OPEN: pb.ENTRY_KIND_OPEN,
    Kind.DEPOSIT: pb.ENTRY_KIND_DEPOSIT,
    Kind.WITHDRAWAL: pb.ENTRY_KIND_WITHDRAWAL,
    Kind.TRANSFER_OUT: pb.ENTRY_KIND_TRANSFER_OUT,
    Kind.TRANSFER_IN: pb.ENTRY_KIND_TRANSFER_IN,
    Kind.TRANSFER_REFUND: pb.ENTRY_KIND_TRANSFER_REFUND,
}
ENTRY_KIND_TO_KIND = {value: kind for kind, value in KIND_TO_ENTRY_KIND.items()}

#: The BatchOperation field each kind of write travels in.
_BATCH_FIELDS = {Kind.OPEN: "open_account", Kind.DEPOSIT: "deposit",
                 Kind.WITHDRAWAL: "withdraw", Kind.TRANSFER_OUT: "transfer"}
_BATCH_KINDS = {name: kind for kind, name in _BATCH_FIELDS.items()}

#: The status code each typed error travels as.
STATUS_CODES: Mapping[str, grpc.StatusCode] = {
    "INVALID_ARGUMENT": grpc.StatusCode.INVALID_ARGUMENT,
    "NOT_FOUND": grpc.StatusCode.NOT_FOUND,
    "ALREADY_EXISTS": grpc.StatusCode.ALREADY_EXISTS,
    "FAILED_PRECONDITION": grpc.StatusCode.FAILED_PRECONDITION,
    "UNAVAILABLE": grpc.StatusCode.UNAVAILABLE,
    "UNAUTHENTICATED": grpc.StatusCode.UNAUTHENTICATED,
    "PERMISSION_DENIED": grpc.StatusCode.PERMISSION_DENIED,
    "RESOURCE_EXHAUSTED": grpc.StatusCode.RESOURCE_EXHAUSTED,
}
CODES_BY_NUMBER = {code.value[0]: code for code in grpc.StatusCode}
_REFUSAL_NUMBERS = ("balance", "amount", "position")


def batch_operation(write: WriteRequest) -> pb.BatchOperation:
    """One write of a Submit call."""
    if write.kind is Kind.OPEN:
        return pb.BatchOperation(open_account=pb.OpenAccountRequest(
            account_id=write.account_id, opening_balance=write.amount,
            request_id=write.request_id))
    if write.kind is Kind.TRANSFER_OUT:
        return pb.BatchOperation(transfer=pb.TransferRequest(
            from_account_id=write.account_id, to_account_id=write.counterparty,
            amount=write.amount, request_id=write.request_id, memo=write.memo))
    request_type = pb.DepositRequest if write.kind is Kind.DEPOSIT else pb.WithdrawRequest
    body = request_type(account_id=write.account_id, amount=write.amount,
                        request_id=write.request_id, memo=write.memo)
    return pb.BatchOperation(**{_BATCH_FIELDS[write.kind]: body})


def write_request(operation: pb.BatchOperation, principal: str) -> WriteRequest:
    """The write a batch operation asks for, on behalf of `principal` (the authenticated
    name the servicer hands in; never a field of the operation); InvalidRequest if it
    names none."""
    kind = _BATCH_KINDS.get(operation.WhichOneof("operation") or "")
    if kind is None:
        raise errors.InvalidRequest(
            "a batch operation must be an open, a deposit, a withdrawal or a transfer")
    if kind is Kind.OPEN:
        o = operation.open_account
        return WriteRequest(Kind.OPEN, o.account_id, o.opening_balance, o.request_id,
                            principal=principal)
    if kind is Kind.TRANSFER_OUT:
        x = operation.transfer
        return WriteRequest(Kind.TRANSFER_OUT, x.from_account_id, x.amount, x.request_id,
                            x.memo, principal, x.to_account_id)
    t = operation.deposit if kind is Kind.DEPOSIT else operation.withdraw
    return WriteRequest(kind, t.account_id, t.amount, t.request_id, t.memo, principal)


def status_code(error: errors.LedgerError) -> grpc.StatusCode:
    return STATUS_CODES.get(error.status, grpc.StatusCode.UNKNOWN)


def refusal_metadata(error: errors.LedgerError) -> tuple[tuple[str, str], ...]:
    """The numbers behind a refusal, as trailing metadata (nothing for other errors)."""
    if not isinstance(error, errors.Refused):
        return ()
    return tuple((key, str(value)) for key, value in (
        ("ledger-reason", errors.refusal_reason(error)),
        ("ledger-balance", error.balance), ("ledger-amount", error.amount),
        ("ledger-position", error.position),
    ) if value is not None)


def error_from_status(code: grpc.StatusCode, message: str,
                      metadata: Mapping[str, str]) -> errors.LedgerError:
    """The typed error a status (and the refusal's trailing metadata) stands for."""
    numbers = {key: int(metadata[f"ledger-{key}"]) for key in _REFUSAL_NUMBERS
               if f"ledger-{key}" in metadata}
    return errors.from_status(code.name, message, metadata.get("ledger-reason", ""),
                              **numbers)


def operation_result(outcome: pb.TransactionReply | pb.TransferReply | errors.LedgerError
                     ) -> pb.OperationResult:
    """One result of a Submit call: the reply, or the error its single call would raise.
    A transfer's result carries its reply whole, and the source's side as `reply`."""
    if isinstance(outcome, pb.TransferReply):
        source = pb.TransactionReply(account_id=outcome.from_account_id,
                                     position=outcome.from_position,
                                     balance=outcome.from_balance,
                                     duplicate=outcome.duplicate, leader=outcome.leader)
        return pb.OperationResult(code=0, reply=source, transfer=outcome)
    if not isinstance(outcome, errors.LedgerError):
        return pb.OperationResult(code=0, reply=outcome)
    result = pb.OperationResult(code=status_code(outcome).value[0], message=str(outcome))
    if isinstance(outcome, errors.Refused):
        result.refusal.CopyFrom(pb.Refusal(
            reason=errors.refusal_reason(outcome), balance=outcome.balance or 0,
            amount=outcome.amount or 0, position=outcome.position or 0))
    return result


def operation_outcome(result: pb.OperationResult) -> pb.TransactionReply | errors.LedgerError:
    """What one result of a Submit call says: the reply, or the typed error."""
    if result.code == 0:
        return result.reply
    code = CODES_BY_NUMBER.get(result.code, grpc.StatusCode.UNKNOWN)
    metadata: dict[str, str] = {}
    if result.HasField("refusal"):
        refusal = result.refusal
        metadata = {"ledger-reason": refusal.reason, "ledger-balance": str(refusal.balance),
                    "ledger-amount": str(refusal.amount),
                    "ledger-position": str(refusal.position)}
    return error_from_status(code, result.message, metadata)
