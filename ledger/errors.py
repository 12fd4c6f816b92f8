"""Typed errors of the bank API, shared by the server and the Python client.

Each names the gRPC status it travels as. Refusals carry the numbers a person
needs to act on them.
"""

from __future__ import annotations


class LedgerError(Exception):
    """Base class; `status` is the gRPC status code name it maps to.

    `request_id` names the request the error is about, when there is one (the
    client sets it, so a caller can retry an unknown outcome with the same id).
    `request_ids` names every request of a batch call that failed as a whole, in the
    batch's order: resubmitting the batch with these ids is always safe.
    """

    status = "UNKNOWN"
    request_id: str | None = None
    request_ids: tuple[str, ...] = ()


class InvalidRequest(LedgerError):
    """The request is malformed (bad id, amount, memo, request id or limit); nothing written."""

    status = "INVALID_ARGUMENT"


class AccountNotFound(LedgerError):
    """The account was never opened (a majority confirmed it); nothing written."""

    status = "NOT_FOUND"


class AccountExists(LedgerError):
    """The account is already open, or the request id was used with other fields."""

    status = "ALREADY_EXISTS"


class Refused(LedgerError):
    """The ledger decided the operation and refused it; the refusal is in the log, final."""

    status = "FAILED_PRECONDITION"

    def __init__(self, message: str, *, balance: int | None = None,
                 amount: int | None = None, position: int | None = None) -> None:
        super().__init__(message)
        self.balance = balance
        self.amount = amount
        self.position = position


class InsufficientFunds(Refused):
    """A withdrawal larger than the balance."""


class BalanceLimit(Refused):
    """A deposit that would take the balance past the limit."""


class Unavailable(LedgerError):
    """No majority answered in time: the write may or may not have happened.

    Retrying with the same request id is always safe.
    """

    status = "UNAVAILABLE"


class Unauthenticated(LedgerError):
    """The caller has no usable identity: its certificate names no principal, or is
    revoked. Nothing was written."""

    status = "UNAUTHENTICATED"


class PermissionDenied(LedgerError):
    """The caller's roles do not allow this call (an auditor depositing, an operator
    withdrawing). Nothing was written."""

    status = "PERMISSION_DENIED"


class Busy(LedgerError):
    """The node has as many calls in flight as it takes; nothing was written. Retry
    shortly, or through another node."""

    status = "RESOURCE_EXHAUSTED"


class AccountQuarantined(Unavailable):
    """This node stopped serving the account: a peer contradicted a value it knows to be
    chosen (an alarm in the node's log names both values). A write already proposed may
    or may not be applied (retrying with the same request id is safe); another node may
    still serve the account, and an operator must look."""


#: How a refusal's reason travels (trailing metadata, batch results).
REFUSAL_REASONS: dict[str, type[Refused]] = {
    "insufficient-funds": InsufficientFunds,
    "balance-limit": BalanceLimit,
}


def refusal_reason(error: Refused) -> str:
    return "insufficient-funds" if isinstance(error, InsufficientFunds) else "balance-limit"


def from_status(status: str, message: str, reason: str = "", **numbers: int) -> LedgerError:
    """The typed error for a gRPC status name, its message and a refusal's details."""
    if status == "FAILED_PRECONDITION":
        return REFUSAL_REASONS.get(reason, Refused)(message, **numbers)
    kinds: dict[str, type[LedgerError]] = {
        "INVALID_ARGUMENT": InvalidRequest, "NOT_FOUND": AccountNotFound,
        "ALREADY_EXISTS": AccountExists, "UNAVAILABLE": Unavailable,
        "DEADLINE_EXCEEDED": Unavailable, "UNAUTHENTICATED": Unauthenticated,
        "PERMISSION_DENIED": PermissionDenied, "RESOURCE_EXHAUSTED": Busy,
    }
    kind = kinds.get(status)
    return kind(message) if kind is not None else LedgerError(f"{status}: {message}")
