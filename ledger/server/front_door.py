"""The public API's front door: every request is measured before it is decoded, and only
so many are worked on at once.

The generated registration would decode any message up to the server's limit (which
the peer API needs large) and start work on any number of calls. Here each Ledger
method gets a decoder that refuses an oversized or undecodable request with a clear
status, and a gate that refuses calls past the limit at once (RESOURCE_EXHAUSTED)
rather than letting them queue without bound.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf.message import DecodeError, Message

from ledger.server.limits import ServerLimits
from ledger.v1 import ledger_pb2 as pb
from ledger.v1 import ledger_pb2_grpc as pb_grpc

SERVICE = pb.DESCRIPTOR.services_by_name["Ledger"]


@dataclass(frozen=True, slots=True)
class Refused:
    """What the decoder hands the method instead of a request it would not decode."""

    code: grpc.StatusCode
    message: str


class CallGate:
    """Counts public API calls in flight; refuses one past the limit."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_flight = 0
        self.refused = 0

    def enter(self) -> bool:
        if self.in_flight >= self.limit:
            self.refused += 1
            return False
        self.in_flight += 1
        return True

    def leave(self) -> None:
        self.in_flight -= 1


def bounded_decoder(request_type: type[Message], max_bytes: int
                    ) -> Callable[[bytes], Message | Refused]:
    name = request_type.DESCRIPTOR.full_name

    def decode(raw: bytes) -> Message | Refused:
        if len(raw) > max_bytes:
            return Refused(grpc.StatusCode.RESOURCE_EXHAUSTED,
                           f"a {name} of {len(raw)} bytes exceeds this API's limit of "
                           f"{max_bytes} bytes: send less per call (Submit fewer operations)")
        try:
            return request_type.FromString(raw)
        except DecodeError as error:
            return Refused(grpc.StatusCode.INVALID_ARGUMENT,
                           f"the request is not a valid {name}: {error}")

    return decode


def guarded(method: Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]],
            gate: CallGate) -> Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]:
    async def handle(request: Any, context: grpc.aio.ServicerContext) -> Any:
        if isinstance(request, Refused):
            await context.abort(request.code, request.message)
        if not gate.enter():
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED,
                                f"this node is busy: {gate.limit} calls are in flight; retry "
                                "shortly or through another node")
        try:
            return await method(request, context)
        finally:
            gate.leave()

    return handle


def add_ledger_servicer(servicer: pb_grpc.LedgerServicer, server: grpc.aio.Server,
                        limits: ServerLimits) -> CallGate:
    """Register the Ledger service behind the front door; the gate, for its counters."""
    gate = CallGate(limits.max_client_calls_in_flight)
    handlers = {}
    for method in SERVICE.methods:
        request_type = getattr(pb, method.input_type.name)
        reply_type = getattr(pb, method.output_type.name)
        handlers[method.name] = grpc.unary_unary_rpc_method_handler(
            guarded(getattr(servicer, method.name), gate),
            request_deserializer=bounded_decoder(request_type,
                                                 limits.max_client_request_bytes),
            response_serializer=reply_type.SerializeToString,
        )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(SERVICE.full_name, handlers),))
    server.add_registered_method_handlers(SERVICE.full_name, handlers)
    return gate
