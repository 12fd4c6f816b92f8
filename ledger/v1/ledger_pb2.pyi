from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Consistency(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CONSISTENCY_UNSPECIFIED: _ClassVar[Consistency]
    CONSISTENCY_STRONG: _ClassVar[Consistency]
    CONSISTENCY_LOCAL: _ClassVar[Consistency]

class EntryKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ENTRY_KIND_UNSPECIFIED: _ClassVar[EntryKind]
    ENTRY_KIND_OPEN: _ClassVar[EntryKind]
    ENTRY_KIND_DEPOSIT: _ClassVar[EntryKind]
    ENTRY_KIND_WITHDRAWAL: _ClassVar[EntryKind]
    ENTRY_KIND_TRANSFER_OUT: _ClassVar[EntryKind]
    ENTRY_KIND_TRANSFER_IN: _ClassVar[EntryKind]
    ENTRY_KIND_TRANSFER_REFUND: _ClassVar[EntryKind]
CONSISTENCY_UNSPECIFIED: Consistency
CONSISTENCY_STRONG: Consistency
CONSISTENCY_LOCAL: Consistency
ENTRY_KIND_UNSPECIFIED: EntryKind
ENTRY_KIND_OPEN: EntryKind
ENTRY_KIND_DEPOSIT: EntryKind
ENTRY_KIND_WITHDRAWAL: EntryKind
ENTRY_KIND_TRANSFER_OUT: EntryKind
ENTRY_KIND_TRANSFER_IN: EntryKind
ENTRY_KIND_TRANSFER_REFUND: EntryKind

class OpenAccountRequest(_message.Message):
    __slots__ = ("account_id", "opening_balance", "request_id")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    OPENING_BALANCE_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    opening_balance: int
    request_id: str
    def __init__(self, account_id: _Optional[str] = ..., opening_balance: _Optional[int] = ..., request_id: _Optional[str] = ...) -> None: ...

class DepositRequest(_message.Message):
    __slots__ = ("account_id", "amount", "request_id", "memo")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    MEMO_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    amount: int
    request_id: str
    memo: str
    def __init__(self, account_id: _Optional[str] = ..., amount: _Optional[int] = ..., request_id: _Optional[str] = ..., memo: _Optional[str] = ...) -> None: ...

class WithdrawRequest(_message.Message):
    __slots__ = ("account_id", "amount", "request_id", "memo")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    MEMO_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    amount: int
    request_id: str
    memo: str
    def __init__(self, account_id: _Optional[str] = ..., amount: _Optional[int] = ..., request_id: _Optional[str] = ..., memo: _Optional[str] = ...) -> None: ...

class TransactionReply(_message.Message):
    __slots__ = ("account_id", "position", "balance", "duplicate", "leader")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    BALANCE_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_FIELD_NUMBER: _ClassVar[int]
    LEADER_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    position: int
    balance: int
    duplicate: bool
    leader: str
    def __init__(self, account_id: _Optional[str] = ..., position: _Optional[int] = ..., balance: _Optional[int] = ..., duplicate: _Optional[bool] = ..., leader: _Optional[str] = ...) -> None: ...

class TransferRequest(_message.Message):
    __slots__ = ("from_account_id", "to_account_id", "amount", "request_id", "memo")
    FROM_ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    TO_ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    MEMO_FIELD_NUMBER: _ClassVar[int]
    from_account_id: str
    to_account_id: str
    amount: int
    request_id: str
    memo: str
    def __init__(self, from_account_id: _Optional[str] = ..., to_account_id: _Optional[str] = ..., amount: _Optional[int] = ..., request_id: _Optional[str] = ..., memo: _Optional[str] = ...) -> None: ...

class TransferReply(_message.Message):
    __slots__ = ("from_account_id", "to_account_id", "from_position", "from_balance", "to_position", "duplicate", "bounced", "refund_position", "leader")
    FROM_ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    TO_ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    FROM_POSITION_FIELD_NUMBER: _ClassVar[int]
    FROM_BALANCE_FIELD_NUMBER: _ClassVar[int]
    TO_POSITION_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_FIELD_NUMBER: _ClassVar[int]
    BOUNCED_FIELD_NUMBER: _ClassVar[int]
    REFUND_POSITION_FIELD_NUMBER: _ClassVar[int]
    LEADER_FIELD_NUMBER: _ClassVar[int]
    from_account_id: str
    to_account_id: str
    from_position: int
    from_balance: int
    to_position: int
    duplicate: bool
    bounced: bool
    refund_position: int
    leader: str
    def __init__(self, from_account_id: _Optional[str] = ..., to_account_id: _Optional[str] = ..., from_position: _Optional[int] = ..., from_balance: _Optional[int] = ..., to_position: _Optional[int] = ..., duplicate: _Optional[bool] = ..., bounced: _Optional[bool] = ..., refund_position: _Optional[int] = ..., leader: _Optional[str] = ...) -> None: ...

class GetBalanceRequest(_message.Message):
    __slots__ = ("account_id", "consistency")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    CONSISTENCY_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    consistency: Consistency
    def __init__(self, account_id: _Optional[str] = ..., consistency: _Optional[_Union[Consistency, str]] = ...) -> None: ...

class BalanceReply(_message.Message):
    __slots__ = ("account_id", "balance", "position")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    BALANCE_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    balance: int
    position: int
    def __init__(self, account_id: _Optional[str] = ..., balance: _Optional[int] = ..., position: _Optional[int] = ...) -> None: ...

class GetHistoryRequest(_message.Message):
    __slots__ = ("account_id", "from_position", "limit", "consistency")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    FROM_POSITION_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    CONSISTENCY_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    from_position: int
    limit: int
    consistency: Consistency
    def __init__(self, account_id: _Optional[str] = ..., from_position: _Optional[int] = ..., limit: _Optional[int] = ..., consistency: _Optional[_Union[Consistency, str]] = ...) -> None: ...

class Entry(_message.Message):
    __slots__ = ("position", "kind", "amount", "balance_after", "request_id", "memo", "rejected", "reject_reason", "recorded_at_ms", "principal", "counterparty_account_id")
    POSITION_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    BALANCE_AFTER_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    MEMO_FIELD_NUMBER: _ClassVar[int]
    REJECTED_FIELD_NUMBER: _ClassVar[int]
    REJECT_REASON_FIELD_NUMBER: _ClassVar[int]
    RECORDED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    PRINCIPAL_FIELD_NUMBER: _ClassVar[int]
    COUNTERPARTY_ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    position: int
    kind: EntryKind
    amount: int
    balance_after: int
    request_id: str
    memo: str
    rejected: bool
    reject_reason: str
    recorded_at_ms: int
    principal: str
    counterparty_account_id: str
    def __init__(self, position: _Optional[int] = ..., kind: _Optional[_Union[EntryKind, str]] = ..., amount: _Optional[int] = ..., balance_after: _Optional[int] = ..., request_id: _Optional[str] = ..., memo: _Optional[str] = ..., rejected: _Optional[bool] = ..., reject_reason: _Optional[str] = ..., recorded_at_ms: _Optional[int] = ..., principal: _Optional[str] = ..., counterparty_account_id: _Optional[str] = ...) -> None: ...

class HistoryReply(_message.Message):
    __slots__ = ("account_id", "entries")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    entries: _containers.RepeatedCompositeFieldContainer[Entry]
    def __init__(self, account_id: _Optional[str] = ..., entries: _Optional[_Iterable[_Union[Entry, _Mapping]]] = ...) -> None: ...

class ListAccountsRequest(_message.Message):
    __slots__ = ("after", "limit")
    AFTER_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    after: str
    limit: int
    def __init__(self, after: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class ListAccountsReply(_message.Message):
    __slots__ = ("account_ids",)
    ACCOUNT_IDS_FIELD_NUMBER: _ClassVar[int]
    account_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, account_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class BatchOperation(_message.Message):
    __slots__ = ("open_account", "deposit", "withdraw", "transfer")
    OPEN_ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    DEPOSIT_FIELD_NUMBER: _ClassVar[int]
    WITHDRAW_FIELD_NUMBER: _ClassVar[int]
    TRANSFER_FIELD_NUMBER: _ClassVar[int]
    open_account: OpenAccountRequest
    deposit: DepositRequest
    withdraw: WithdrawRequest
    transfer: TransferRequest
    def __init__(self, open_account: _Optional[_Union[OpenAccountRequest, _Mapping]] = ..., deposit: _Optional[_Union[DepositRequest, _Mapping]] = ..., withdraw: _Optional[_Union[WithdrawRequest, _Mapping]] = ..., transfer: _Optional[_Union[TransferRequest, _Mapping]] = ...) -> None: ...

class SubmitRequest(_message.Message):
    __slots__ = ("operations", "on_behalf_of")
    OPERATIONS_FIELD_NUMBER: _ClassVar[int]
    ON_BEHALF_OF_FIELD_NUMBER: _ClassVar[int]
    operations: _containers.RepeatedCompositeFieldContainer[BatchOperation]
    on_behalf_of: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, operations: _Optional[_Iterable[_Union[BatchOperation, _Mapping]]] = ..., on_behalf_of: _Optional[_Iterable[str]] = ...) -> None: ...

class OperationResult(_message.Message):
    __slots__ = ("code", "message", "reply", "refusal", "transfer")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    REPLY_FIELD_NUMBER: _ClassVar[int]
    REFUSAL_FIELD_NUMBER: _ClassVar[int]
    TRANSFER_FIELD_NUMBER: _ClassVar[int]
    code: int
    message: str
    reply: TransactionReply
    refusal: Refusal
    transfer: TransferReply
    def __init__(self, code: _Optional[int] = ..., message: _Optional[str] = ..., reply: _Optional[_Union[TransactionReply, _Mapping]] = ..., refusal: _Optional[_Union[Refusal, _Mapping]] = ..., transfer: _Optional[_Union[TransferReply, _Mapping]] = ...) -> None: ...

class Refusal(_message.Message):
    __slots__ = ("reason", "balance", "amount", "position")
    REASON_FIELD_NUMBER: _ClassVar[int]
    BALANCE_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    reason: str
    balance: int
    amount: int
    position: int
    def __init__(self, reason: _Optional[str] = ..., balance: _Optional[int] = ..., amount: _Optional[int] = ..., position: _Optional[int] = ...) -> None: ...

class SubmitReply(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[OperationResult]
    def __init__(self, results: _Optional[_Iterable[_Union[OperationResult, _Mapping]]] = ...) -> None: ...

class StreamRequest(_message.Message):
    __slots__ = ("tag", "operations", "timeout_ms", "on_behalf_of")
    TAG_FIELD_NUMBER: _ClassVar[int]
    OPERATIONS_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    ON_BEHALF_OF_FIELD_NUMBER: _ClassVar[int]
    tag: int
    operations: _containers.RepeatedCompositeFieldContainer[BatchOperation]
    timeout_ms: int
    on_behalf_of: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, tag: _Optional[int] = ..., operations: _Optional[_Iterable[_Union[BatchOperation, _Mapping]]] = ..., timeout_ms: _Optional[int] = ..., on_behalf_of: _Optional[_Iterable[str]] = ...) -> None: ...

class StreamReply(_message.Message):
    __slots__ = ("tag", "results")
    TAG_FIELD_NUMBER: _ClassVar[int]
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    tag: int
    results: _containers.RepeatedCompositeFieldContainer[OperationResult]
    def __init__(self, tag: _Optional[int] = ..., results: _Optional[_Iterable[_Union[OperationResult, _Mapping]]] = ...) -> None: ...

class AuditRequest(_message.Message):
    __slots__ = ("totals_only", "page_size")
    TOTALS_ONLY_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    totals_only: bool
    page_size: int
    def __init__(self, totals_only: _Optional[bool] = ..., page_size: _Optional[int] = ...) -> None: ...

class AuditedAccount(_message.Message):
    __slots__ = ("account_id", "balance", "position", "in_flight")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    BALANCE_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    IN_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    balance: int
    position: int
    in_flight: int
    def __init__(self, account_id: _Optional[str] = ..., balance: _Optional[int] = ..., position: _Optional[int] = ..., in_flight: _Optional[int] = ...) -> None: ...

class AuditTotals(_message.Message):
    __slots__ = ("accounts", "balances", "in_flight", "transfers_in_flight", "total", "node")
    ACCOUNTS_FIELD_NUMBER: _ClassVar[int]
    BALANCES_FIELD_NUMBER: _ClassVar[int]
    IN_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    TRANSFERS_IN_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    NODE_FIELD_NUMBER: _ClassVar[int]
    accounts: int
    balances: str
    in_flight: str
    transfers_in_flight: int
    total: str
    node: str
    def __init__(self, accounts: _Optional[int] = ..., balances: _Optional[str] = ..., in_flight: _Optional[str] = ..., transfers_in_flight: _Optional[int] = ..., total: _Optional[str] = ..., node: _Optional[str] = ...) -> None: ...

class AuditReply(_message.Message):
    __slots__ = ("totals", "accounts")
    TOTALS_FIELD_NUMBER: _ClassVar[int]
    ACCOUNTS_FIELD_NUMBER: _ClassVar[int]
    totals: AuditTotals
    accounts: _containers.RepeatedCompositeFieldContainer[AuditedAccount]
    def __init__(self, totals: _Optional[_Union[AuditTotals, _Mapping]] = ..., accounts: _Optional[_Iterable[_Union[AuditedAccount, _Mapping]]] = ...) -> None: ...
