"""What one node accepts from its callers: every bound a client or peer can push on.

The defaults are generous for real use and documented in the README; a test may
start a node with smaller ones.
"""

from __future__ import annotations

from dataclasses import dataclass

from ledger.node.transport import MAX_PEER_MESSAGE_BYTES


@dataclass(frozen=True, slots=True)
class ServerLimits:
    #: A public API request, checked before it is decoded (a Submit of 10,000 ordinary
    #: operations is about 1 MiB); the peer API's own bound is far larger.
    max_client_request_bytes: int = 4 << 20
    #: Public API calls being worked on at once; more are refused at once (RESOURCE_EXHAUSTED).
    max_client_calls_in_flight: int = 1_024
    #: Every call at once, peers' and operators' included (gRPC refuses the rest).
    max_concurrent_rpcs: int = 4_096
    #: The longest a node works on one call, whatever deadline the caller asked for.
    max_deadline_s: float = 60.0
    #: Any message the server receives (the peer API carries catch-up batches).
    max_message_bytes: int = MAX_PEER_MESSAGE_BYTES

    def __post_init__(self) -> None:
        if not 0 < self.max_client_request_bytes <= self.max_message_bytes:
            raise ValueError("need 0 < max_client_request_bytes <= max_message_bytes")
        if self.max_client_calls_in_flight < 1 or self.max_concurrent_rpcs < 1:
            raise ValueError("call limits must be at least 1")
        if self.max_deadline_s <= 0:
            raise ValueError("max_deadline_s must be positive")
