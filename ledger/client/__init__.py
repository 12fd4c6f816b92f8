"""The Python client of the bank API: failover, deadlines, request ids, typed errors.

    from ledger.client import LedgerClient

    with LedgerClient("127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003") as bank:
        bank.open_account("alice", opening_balance=10_000)
        bank.deposit("alice", 2_500, memo="salary")
        print(bank.balance("alice").balance)
"""

from ledger.client.client import (
    AuditedBalance,
    Balance,
    BankAudit,
    BatchWrite,
    HistoryEntry,
    LedgerClient,
    Transaction,
    TransferReceipt,
    new_request_id,
    with_request_ids,
)
from ledger.errors import (
    AccountExists,
    AccountNotFound,
    BalanceLimit,
    Busy,
    InsufficientFunds,
    InvalidRequest,
    LedgerError,
    PermissionDenied,
    Refused,
    Unauthenticated,
    Unavailable,
)
from ledger.security.tls import INSECURE, Security, SecurityConfigError, client_security

__all__ = [
    "INSECURE",
    "AccountExists",
    "AccountNotFound",
    "AuditedBalance",
    "Balance",
    "BalanceLimit",
    "BankAudit",
    "BatchWrite",
    "Busy",
    "HistoryEntry",
    "InsufficientFunds",
    "InvalidRequest",
    "LedgerClient",
    "LedgerError",
    "PermissionDenied",
    "Refused",
    "Security",
    "SecurityConfigError",
    "Transaction",
    "TransferReceipt",
    "Unauthenticated",
    "Unavailable",
    "client_security",
    "new_request_id",
    "with_request_ids",
]
