from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Ballot(_message.Message):
    __slots__ = ("round", "node_index")
    ROUND_FIELD_NUMBER: _ClassVar[int]
    NODE_INDEX_FIELD_NUMBER: _ClassVar[int]
    round: int
    node_index: int
    def __init__(self, round: _Optional[int] = ..., node_index: _Optional[int] = ...) -> None: ...

class Vote(_message.Message):
    __slots__ = ("slot", "ballot", "value")
    SLOT_FIELD_NUMBER: _ClassVar[int]
    BALLOT_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    slot: int
    ballot: Ballot
    value: bytes
    def __init__(self, slot: _Optional[int] = ..., ballot: _Optional[_Union[Ballot, _Mapping]] = ..., value: _Optional[bytes] = ...) -> None: ...

class Prepare(_message.Message):
    __slots__ = ("account", "from_slot", "ballot")
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    FROM_SLOT_FIELD_NUMBER: _ClassVar[int]
    BALLOT_FIELD_NUMBER: _ClassVar[int]
    account: str
    from_slot: int
    ballot: Ballot
    def __init__(self, account: _Optional[str] = ..., from_slot: _Optional[int] = ..., ballot: _Optional[_Union[Ballot, _Mapping]] = ...) -> None: ...

class Promise(_message.Message):
    __slots__ = ("account", "from_slot", "ballot", "accepted", "chosen", "chosen_through")
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    FROM_SLOT_FIELD_NUMBER: _ClassVar[int]
    BALLOT_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    CHOSEN_FIELD_NUMBER: _ClassVar[int]
    CHOSEN_THROUGH_FIELD_NUMBER: _ClassVar[int]
    account: str
    from_slot: int
    ballot: Ballot
    accepted: _containers.RepeatedCompositeFieldContainer[Vote]
    chosen: _containers.RepeatedScalarFieldContainer[bytes]
    chosen_through: int
    def __init__(self, account: _Optional[str] = ..., from_slot: _Optional[int] = ..., ballot: _Optional[_Union[Ballot, _Mapping]] = ..., accepted: _Optional[_Iterable[_Union[Vote, _Mapping]]] = ..., chosen: _Optional[_Iterable[bytes]] = ..., chosen_through: _Optional[int] = ...) -> None: ...

class Accept(_message.Message):
    __slots__ = ("account", "slot", "ballot", "value")
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    SLOT_FIELD_NUMBER: _ClassVar[int]
    BALLOT_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    account: str
    slot: int
    ballot: Ballot
    value: bytes
    def __init__(self, account: _Optional[str] = ..., slot: _Optional[int] = ..., ballot: _Optional[_Union[Ballot, _Mapping]] = ..., value: _Optional[bytes] = ...) -> None: ...

class Accepted(_message.Message):
    __slots__ = ("account", "slot", "ballot", "chosen_through")
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    SLOT_FIELD_NUMBER: _ClassVar[int]
    BALLOT_FIELD_NUMBER: _ClassVar[int]
    CHOSEN_THROUGH_FIELD_NUMBER: _ClassVar[int]
    account: str
    slot: int
    ballot: Ballot
    chosen_through: int
    def __init__(self, account: _Optional[str] = ..., slot: _Optional[int] = ..., ballot: _Optional[_Union[Ballot, _Mapping]] = ..., chosen_through: _Optional[int] = ...) -> None: ...

class Nack(_message.Message):
    __slots__ = ("account", "slot", "ballot", "promised", "chosen_through")
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    SLOT_FIELD_NUMBER: _ClassVar[int]
    BALLOT_FIELD_NUMBER: _ClassVar[int]
    PROMISED_FIELD_NUMBER: _ClassVar[int]
    CHOSEN_THROUGH_FIELD_NUMBER: _ClassVar[int]
    account: str
    slot: int
    ballot: Ballot
    promised: Ballot
    chosen_through: int
    def __init__(self, account: _Optional[str] = ..., slot: _Optional[int] = ..., ballot: _Optional[_Union[Ballot, _Mapping]] = ..., promised: _Optional[_Union[Ballot, _Mapping]] = ..., chosen_through: _Optional[int] = ...) -> None: ...

class Learn(_message.Message):
    __slots__ = ("account", "slot", "value")
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    SLOT_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    account: str
    slot: int
    value: bytes
    def __init__(self, account: _Optional[str] = ..., slot: _Optional[int] = ..., value: _Optional[bytes] = ...) -> None: ...

class CatchUpRequest(_message.Message):
    __slots__ = ("account", "from_slot", "limit")
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    FROM_SLOT_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    account: str
    from_slot: int
    limit: int
    def __init__(self, account: _Optional[str] = ..., from_slot: _Optional[int] = ..., limit: _Optional[int] = ...) -> None: ...

class CatchUpReply(_message.Message):
    __slots__ = ("account", "from_slot", "values", "chosen_through")
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    FROM_SLOT_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    CHOSEN_THROUGH_FIELD_NUMBER: _ClassVar[int]
    account: str
    from_slot: int
    values: _containers.RepeatedScalarFieldContainer[bytes]
    chosen_through: int
    def __init__(self, account: _Optional[str] = ..., from_slot: _Optional[int] = ..., values: _Optional[_Iterable[bytes]] = ..., chosen_through: _Optional[int] = ...) -> None: ...

class TailQuery(_message.Message):
    __slots__ = ("account", "nonce")
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    NONCE_FIELD_NUMBER: _ClassVar[int]
    account: str
    nonce: int
    def __init__(self, account: _Optional[str] = ..., nonce: _Optional[int] = ...) -> None: ...

class TailReport(_message.Message):
    __slots__ = ("account", "nonce", "chosen_through", "highest_vote")
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    NONCE_FIELD_NUMBER: _ClassVar[int]
    CHOSEN_THROUGH_FIELD_NUMBER: _ClassVar[int]
    HIGHEST_VOTE_FIELD_NUMBER: _ClassVar[int]
    account: str
    nonce: int
    chosen_through: int
    highest_vote: int
    def __init__(self, account: _Optional[str] = ..., nonce: _Optional[int] = ..., chosen_through: _Optional[int] = ..., highest_vote: _Optional[int] = ...) -> None: ...

class AccountTail(_message.Message):
    __slots__ = ("account", "chosen_through")
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    CHOSEN_THROUGH_FIELD_NUMBER: _ClassVar[int]
    account: str
    chosen_through: int
    def __init__(self, account: _Optional[str] = ..., chosen_through: _Optional[int] = ...) -> None: ...

class TailsRequest(_message.Message):
    __slots__ = ("after", "limit")
    AFTER_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    after: str
    limit: int
    def __init__(self, after: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class TailsReply(_message.Message):
    __slots__ = ("after", "tails", "complete")
    AFTER_FIELD_NUMBER: _ClassVar[int]
    TAILS_FIELD_NUMBER: _ClassVar[int]
    COMPLETE_FIELD_NUMBER: _ClassVar[int]
    after: str
    tails: _containers.RepeatedCompositeFieldContainer[AccountTail]
    complete: bool
    def __init__(self, after: _Optional[str] = ..., tails: _Optional[_Iterable[_Union[AccountTail, _Mapping]]] = ..., complete: _Optional[bool] = ...) -> None: ...

class PeerMessage(_message.Message):
    __slots__ = ("prepare", "promise", "accept", "accepted", "nack", "learn", "catch_up_request", "catch_up_reply", "tails_request", "tails_reply", "tail_query", "tail_report")
    PREPARE_FIELD_NUMBER: _ClassVar[int]
    PROMISE_FIELD_NUMBER: _ClassVar[int]
    ACCEPT_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    NACK_FIELD_NUMBER: _ClassVar[int]
    LEARN_FIELD_NUMBER: _ClassVar[int]
    CATCH_UP_REQUEST_FIELD_NUMBER: _ClassVar[int]
    CATCH_UP_REPLY_FIELD_NUMBER: _ClassVar[int]
    TAILS_REQUEST_FIELD_NUMBER: _ClassVar[int]
    TAILS_REPLY_FIELD_NUMBER: _ClassVar[int]
    TAIL_QUERY_FIELD_NUMBER: _ClassVar[int]
    TAIL_REPORT_FIELD_NUMBER: _ClassVar[int]
    prepare: Prepare
    promise: Promise
    accept: Accept
    accepted: Accepted
    nack: Nack
    learn: Learn
    catch_up_request: CatchUpRequest
    catch_up_reply: CatchUpReply
    tails_request: TailsRequest
    tails_reply: TailsReply
    tail_query: TailQuery
    tail_report: TailReport
    def __init__(self, prepare: _Optional[_Union[Prepare, _Mapping]] = ..., promise: _Optional[_Union[Promise, _Mapping]] = ..., accept: _Optional[_Union[Accept, _Mapping]] = ..., accepted: _Optional[_Union[Accepted, _Mapping]] = ..., nack: _Optional[_Union[Nack, _Mapping]] = ..., learn: _Optional[_Union[Learn, _Mapping]] = ..., catch_up_request: _Optional[_Union[CatchUpRequest, _Mapping]] = ..., catch_up_reply: _Optional[_Union[CatchUpReply, _Mapping]] = ..., tails_request: _Optional[_Union[TailsRequest, _Mapping]] = ..., tails_reply: _Optional[_Union[TailsReply, _Mapping]] = ..., tail_query: _Optional[_Union[TailQuery, _Mapping]] = ..., tail_report: _Optional[_Union[TailReport, _Mapping]] = ...) -> None: ...

class Incarnation(_message.Message):
    __slots__ = ("generation", "id")
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    generation: int
    id: bytes
    def __init__(self, generation: _Optional[int] = ..., id: _Optional[bytes] = ...) -> None: ...

class StepRequest(_message.Message):
    __slots__ = ("cluster_fingerprint", "source_node_id", "messages", "source_incarnation", "source_durable_seq", "source_boot")
    CLUSTER_FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    SOURCE_NODE_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    SOURCE_INCARNATION_FIELD_NUMBER: _ClassVar[int]
    SOURCE_DURABLE_SEQ_FIELD_NUMBER: _ClassVar[int]
    SOURCE_BOOT_FIELD_NUMBER: _ClassVar[int]
    cluster_fingerprint: str
    source_node_id: str
    messages: _containers.RepeatedCompositeFieldContainer[PeerMessage]
    source_incarnation: Incarnation
    source_durable_seq: int
    source_boot: int
    def __init__(self, cluster_fingerprint: _Optional[str] = ..., source_node_id: _Optional[str] = ..., messages: _Optional[_Iterable[_Union[PeerMessage, _Mapping]]] = ..., source_incarnation: _Optional[_Union[Incarnation, _Mapping]] = ..., source_durable_seq: _Optional[int] = ..., source_boot: _Optional[int] = ...) -> None: ...

class StepReply(_message.Message):
    __slots__ = ("messages", "requests_answered", "source_incarnation", "source_durable_seq", "source_boot")
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_ANSWERED_FIELD_NUMBER: _ClassVar[int]
    SOURCE_INCARNATION_FIELD_NUMBER: _ClassVar[int]
    SOURCE_DURABLE_SEQ_FIELD_NUMBER: _ClassVar[int]
    SOURCE_BOOT_FIELD_NUMBER: _ClassVar[int]
    messages: _containers.RepeatedCompositeFieldContainer[PeerMessage]
    requests_answered: int
    source_incarnation: Incarnation
    source_durable_seq: int
    source_boot: int
    def __init__(self, messages: _Optional[_Iterable[_Union[PeerMessage, _Mapping]]] = ..., requests_answered: _Optional[int] = ..., source_incarnation: _Optional[_Union[Incarnation, _Mapping]] = ..., source_durable_seq: _Optional[int] = ..., source_boot: _Optional[int] = ...) -> None: ...

class IdentifyRequest(_message.Message):
    __slots__ = ("cluster_fingerprint", "node_id")
    CLUSTER_FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    cluster_fingerprint: str
    node_id: str
    def __init__(self, cluster_fingerprint: _Optional[str] = ..., node_id: _Optional[str] = ...) -> None: ...

class IdentifyReply(_message.Message):
    __slots__ = ("node_id", "known", "recorded", "durable_seq_seen")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    KNOWN_FIELD_NUMBER: _ClassVar[int]
    RECORDED_FIELD_NUMBER: _ClassVar[int]
    DURABLE_SEQ_SEEN_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    known: bool
    recorded: Incarnation
    durable_seq_seen: int
    def __init__(self, node_id: _Optional[str] = ..., known: _Optional[bool] = ..., recorded: _Optional[_Union[Incarnation, _Mapping]] = ..., durable_seq_seen: _Optional[int] = ...) -> None: ...

class RejoinRequest(_message.Message):
    __slots__ = ("cluster_fingerprint", "node_id", "incarnation")
    CLUSTER_FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    INCARNATION_FIELD_NUMBER: _ClassVar[int]
    cluster_fingerprint: str
    node_id: str
    incarnation: Incarnation
    def __init__(self, cluster_fingerprint: _Optional[str] = ..., node_id: _Optional[str] = ..., incarnation: _Optional[_Union[Incarnation, _Mapping]] = ...) -> None: ...

class RejoinReply(_message.Message):
    __slots__ = ("node_id", "max_round", "recovering")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    MAX_ROUND_FIELD_NUMBER: _ClassVar[int]
    RECOVERING_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    max_round: int
    recovering: bool
    def __init__(self, node_id: _Optional[str] = ..., max_round: _Optional[int] = ..., recovering: _Optional[bool] = ...) -> None: ...

class RecoveryTailsRequest(_message.Message):
    __slots__ = ("cluster_fingerprint", "node_id", "after", "limit")
    CLUSTER_FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    AFTER_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    cluster_fingerprint: str
    node_id: str
    after: str
    limit: int
    def __init__(self, cluster_fingerprint: _Optional[str] = ..., node_id: _Optional[str] = ..., after: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class RecoveryTail(_message.Message):
    __slots__ = ("account", "chosen_through", "highest_slot")
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    CHOSEN_THROUGH_FIELD_NUMBER: _ClassVar[int]
    HIGHEST_SLOT_FIELD_NUMBER: _ClassVar[int]
    account: str
    chosen_through: int
    highest_slot: int
    def __init__(self, account: _Optional[str] = ..., chosen_through: _Optional[int] = ..., highest_slot: _Optional[int] = ...) -> None: ...

class RecoveryTailsReply(_message.Message):
    __slots__ = ("tails", "complete")
    TAILS_FIELD_NUMBER: _ClassVar[int]
    COMPLETE_FIELD_NUMBER: _ClassVar[int]
    tails: _containers.RepeatedCompositeFieldContainer[RecoveryTail]
    complete: bool
    def __init__(self, tails: _Optional[_Iterable[_Union[RecoveryTail, _Mapping]]] = ..., complete: _Optional[bool] = ...) -> None: ...

class StatusRequest(_message.Message):
    __slots__ = ("after", "limit")
    AFTER_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    after: str
    limit: int
    def __init__(self, after: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class AccountStatus(_message.Message):
    __slots__ = ("account", "applied_slot", "chosen_through", "digest", "opened", "balance", "highest_slot")
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    APPLIED_SLOT_FIELD_NUMBER: _ClassVar[int]
    CHOSEN_THROUGH_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    OPENED_FIELD_NUMBER: _ClassVar[int]
    BALANCE_FIELD_NUMBER: _ClassVar[int]
    HIGHEST_SLOT_FIELD_NUMBER: _ClassVar[int]
    account: str
    applied_slot: int
    chosen_through: int
    digest: bytes
    opened: bool
    balance: int
    highest_slot: int
    def __init__(self, account: _Optional[str] = ..., applied_slot: _Optional[int] = ..., chosen_through: _Optional[int] = ..., digest: _Optional[bytes] = ..., opened: _Optional[bool] = ..., balance: _Optional[int] = ..., highest_slot: _Optional[int] = ...) -> None: ...

class StatusReply(_message.Message):
    __slots__ = ("node_id", "peers", "cluster_fingerprint", "accounts", "complete", "counters")
    class CountersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    PEERS_FIELD_NUMBER: _ClassVar[int]
    CLUSTER_FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    ACCOUNTS_FIELD_NUMBER: _ClassVar[int]
    COMPLETE_FIELD_NUMBER: _ClassVar[int]
    COUNTERS_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    peers: _containers.RepeatedScalarFieldContainer[str]
    cluster_fingerprint: str
    accounts: _containers.RepeatedCompositeFieldContainer[AccountStatus]
    complete: bool
    counters: _containers.ScalarMap[str, int]
    def __init__(self, node_id: _Optional[str] = ..., peers: _Optional[_Iterable[str]] = ..., cluster_fingerprint: _Optional[str] = ..., accounts: _Optional[_Iterable[_Union[AccountStatus, _Mapping]]] = ..., complete: _Optional[bool] = ..., counters: _Optional[_Mapping[str, int]] = ...) -> None: ...

class LogRequest(_message.Message):
    __slots__ = ("account", "from_slot", "limit")
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    FROM_SLOT_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    account: str
    from_slot: int
    limit: int
    def __init__(self, account: _Optional[str] = ..., from_slot: _Optional[int] = ..., limit: _Optional[int] = ...) -> None: ...

class LogReply(_message.Message):
    __slots__ = ("account", "from_slot", "values", "chosen_through")
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    FROM_SLOT_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    CHOSEN_THROUGH_FIELD_NUMBER: _ClassVar[int]
    account: str
    from_slot: int
    values: _containers.RepeatedScalarFieldContainer[bytes]
    chosen_through: int
    def __init__(self, account: _Optional[str] = ..., from_slot: _Optional[int] = ..., values: _Optional[_Iterable[bytes]] = ..., chosen_through: _Optional[int] = ...) -> None: ...

class TraceRequest(_message.Message):
    __slots__ = ("account", "start", "stop")
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    STOP_FIELD_NUMBER: _ClassVar[int]
    account: str
    start: bool
    stop: bool
    def __init__(self, account: _Optional[str] = ..., start: _Optional[bool] = ..., stop: _Optional[bool] = ...) -> None: ...

class TraceEvent(_message.Message):
    __slots__ = ("at_ms", "node_id", "direction", "peer_id", "text", "kind", "slot", "ballot")
    AT_MS_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    DIRECTION_FIELD_NUMBER: _ClassVar[int]
    PEER_ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    SLOT_FIELD_NUMBER: _ClassVar[int]
    BALLOT_FIELD_NUMBER: _ClassVar[int]
    at_ms: int
    node_id: str
    direction: str
    peer_id: str
    text: str
    kind: str
    slot: int
    ballot: str
    def __init__(self, at_ms: _Optional[int] = ..., node_id: _Optional[str] = ..., direction: _Optional[str] = ..., peer_id: _Optional[str] = ..., text: _Optional[str] = ..., kind: _Optional[str] = ..., slot: _Optional[int] = ..., ballot: _Optional[str] = ...) -> None: ...

class TraceReply(_message.Message):
    __slots__ = ("events",)
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[TraceEvent]
    def __init__(self, events: _Optional[_Iterable[_Union[TraceEvent, _Mapping]]] = ...) -> None: ...

class BackupRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class BackupChunk(_message.Message):
    __slots__ = ("node_id", "data", "total_bytes")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    TOTAL_BYTES_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    data: bytes
    total_bytes: int
    def __init__(self, node_id: _Optional[str] = ..., data: _Optional[bytes] = ..., total_bytes: _Optional[int] = ...) -> None: ...
