from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class OperationKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OPERATION_KIND_UNSPECIFIED: _ClassVar[OperationKind]
    OPERATION_KIND_OPEN: _ClassVar[OperationKind]
    OPERATION_KIND_DEPOSIT: _ClassVar[OperationKind]
    OPERATION_KIND_WITHDRAWAL: _ClassVar[OperationKind]
    OPERATION_KIND_TRANSFER_OUT: _ClassVar[OperationKind]
    OPERATION_KIND_TRANSFER_IN: _ClassVar[OperationKind]
    OPERATION_KIND_TRANSFER_REFUND: _ClassVar[OperationKind]
    OPERATION_KIND_TRANSFER_SETTLE: _ClassVar[OperationKind]
OPERATION_KIND_UNSPECIFIED: OperationKind
OPERATION_KIND_OPEN: OperationKind
OPERATION_KIND_DEPOSIT: OperationKind
OPERATION_KIND_WITHDRAWAL: OperationKind
OPERATION_KIND_TRANSFER_OUT: OperationKind
OPERATION_KIND_TRANSFER_IN: OperationKind
OPERATION_KIND_TRANSFER_REFUND: OperationKind
OPERATION_KIND_TRANSFER_SETTLE: OperationKind

class LogOperation(_message.Message):
    __slots__ = ("kind", "amount", "request_id", "memo", "recorded_at_ms", "principal", "counterparty", "counterparty_slot")
    KIND_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    MEMO_FIELD_NUMBER: _ClassVar[int]
    RECORDED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    PRINCIPAL_FIELD_NUMBER: _ClassVar[int]
    COUNTERPARTY_FIELD_NUMBER: _ClassVar[int]
    COUNTERPARTY_SLOT_FIELD_NUMBER: _ClassVar[int]
    kind: OperationKind
    amount: int
    request_id: str
    memo: str
    recorded_at_ms: int
    principal: str
    counterparty: str
    counterparty_slot: int
    def __init__(self, kind: _Optional[_Union[OperationKind, str]] = ..., amount: _Optional[int] = ..., request_id: _Optional[str] = ..., memo: _Optional[str] = ..., recorded_at_ms: _Optional[int] = ..., principal: _Optional[str] = ..., counterparty: _Optional[str] = ..., counterparty_slot: _Optional[int] = ...) -> None: ...

class LogEntry(_message.Message):
    __slots__ = ("operations", "nonce")
    OPERATIONS_FIELD_NUMBER: _ClassVar[int]
    NONCE_FIELD_NUMBER: _ClassVar[int]
    operations: _containers.RepeatedCompositeFieldContainer[LogOperation]
    nonce: int
    def __init__(self, operations: _Optional[_Iterable[_Union[LogOperation, _Mapping]]] = ..., nonce: _Optional[int] = ...) -> None: ...

class AccountRecord(_message.Message):
    __slots__ = ("applied_slot", "opened", "balance", "operations", "pending_out")
    APPLIED_SLOT_FIELD_NUMBER: _ClassVar[int]
    OPENED_FIELD_NUMBER: _ClassVar[int]
    BALANCE_FIELD_NUMBER: _ClassVar[int]
    OPERATIONS_FIELD_NUMBER: _ClassVar[int]
    PENDING_OUT_FIELD_NUMBER: _ClassVar[int]
    applied_slot: int
    opened: bool
    balance: int
    operations: int
    pending_out: int
    def __init__(self, applied_slot: _Optional[int] = ..., opened: _Optional[bool] = ..., balance: _Optional[int] = ..., operations: _Optional[int] = ..., pending_out: _Optional[int] = ...) -> None: ...

class PendingRecord(_message.Message):
    __slots__ = ("to_account", "amount", "slot", "recorded_at_ms", "memo", "principal")
    TO_ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    SLOT_FIELD_NUMBER: _ClassVar[int]
    RECORDED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    MEMO_FIELD_NUMBER: _ClassVar[int]
    PRINCIPAL_FIELD_NUMBER: _ClassVar[int]
    to_account: str
    amount: int
    slot: int
    recorded_at_ms: int
    memo: str
    principal: str
    def __init__(self, to_account: _Optional[str] = ..., amount: _Optional[int] = ..., slot: _Optional[int] = ..., recorded_at_ms: _Optional[int] = ..., memo: _Optional[str] = ..., principal: _Optional[str] = ...) -> None: ...

class RequestRecord(_message.Message):
    __slots__ = ("position", "kind", "amount", "memo", "rejected", "reject_reason", "balance_after", "slot", "counterparty")
    POSITION_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    MEMO_FIELD_NUMBER: _ClassVar[int]
    REJECTED_FIELD_NUMBER: _ClassVar[int]
    REJECT_REASON_FIELD_NUMBER: _ClassVar[int]
    BALANCE_AFTER_FIELD_NUMBER: _ClassVar[int]
    SLOT_FIELD_NUMBER: _ClassVar[int]
    COUNTERPARTY_FIELD_NUMBER: _ClassVar[int]
    position: int
    kind: OperationKind
    amount: int
    memo: str
    rejected: bool
    reject_reason: str
    balance_after: int
    slot: int
    counterparty: str
    def __init__(self, position: _Optional[int] = ..., kind: _Optional[_Union[OperationKind, str]] = ..., amount: _Optional[int] = ..., memo: _Optional[str] = ..., rejected: _Optional[bool] = ..., reject_reason: _Optional[str] = ..., balance_after: _Optional[int] = ..., slot: _Optional[int] = ..., counterparty: _Optional[str] = ...) -> None: ...

class HistoryRecord(_message.Message):
    __slots__ = ("position", "kind", "amount", "balance_after", "request_id", "memo", "rejected", "reject_reason", "recorded_at_ms", "principal", "counterparty")
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
    COUNTERPARTY_FIELD_NUMBER: _ClassVar[int]
    position: int
    kind: OperationKind
    amount: int
    balance_after: int
    request_id: str
    memo: str
    rejected: bool
    reject_reason: str
    recorded_at_ms: int
    principal: str
    counterparty: str
    def __init__(self, position: _Optional[int] = ..., kind: _Optional[_Union[OperationKind, str]] = ..., amount: _Optional[int] = ..., balance_after: _Optional[int] = ..., request_id: _Optional[str] = ..., memo: _Optional[str] = ..., rejected: _Optional[bool] = ..., reject_reason: _Optional[str] = ..., recorded_at_ms: _Optional[int] = ..., principal: _Optional[str] = ..., counterparty: _Optional[str] = ...) -> None: ...
