"""Every service's front door: the caller is authenticated and authorised before any
method runs, a request is measured before it is decoded, and the public API works on
only so many calls at once.

The generated registration would decode any message up to the server's limit (which
the peer API needs large) and hand a decoding failure to gRPC as an internal error.
Here each method gets a decoder that refuses an oversized or undecodable request
with a clear status (RESOURCE_EXHAUSTED, INVALID_ARGUMENT), and the public Ledger
service a gate that refuses calls past its limit at once (RESOURCE_EXHAUSTED)
rather than letting them queue without bound. Every call's principal comes from its
TLS session (ledger.security.authn) and must hold a role the method's row of
ledger.security.policy names: UNAUTHENTICATED or PERMISSION_DENIED otherwise, before
the method sees the request, so a refused call changes nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import grpc
from google.protobuf.descriptor import ServiceDescriptor
from google.protobuf.message import DecodeError, Message
from grpc_health.v1 import health, health_pb2

from ledger.security import policy
from ledger.security.authn import Authenticator, Unauthenticated
from ledger.security.principal import ANONYMOUS, Principal, set_current_principal

log = logging.getLogger(__name__)

MAX_HEALTH_REQUEST_BYTES = 1024  # a health check names one service


@dataclass(frozen=True, slots=True)
class Refused:
    """What the decoder hands the method instead of a request it would not decode."""

    code: grpc.StatusCode
    message: str


class CallRefused(Exception):
    """Raised anywhere under a front-door handler to end the call with `code`: the
    handler's own task aborts it. A stream's reader task must never abort the call
    itself: abort sends the status while the handler may be writing a reply, and gRPC
    then never finishes the call (the client hangs until its deadline)."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class CallGate:
    """Counts calls in flight; refuses one past the limit."""

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


#: Calls a security review wants a line about each time: who took a copy of the data, or
#: of its trace (the rest is counted; money movements are in the history, by principal).
AUDITED_METHODS = frozenset({"/ledger.v1.Admin/Backup", "/ledger.v1.Admin/Trace"})
REFUSALS_LOGGED_EVERY_S = 10.0  # refusals are counted always, logged at most this often


class Guard:
    """Authenticates and authorises each call, and counts what it refused."""

    def __init__(self, authenticator: Authenticator) -> None:
        self.authenticator = authenticator
        self.unauthenticated = 0
        self.denied = 0
        # Told how long each unary call took (method, seconds) when metrics are served.
        self.timed: Callable[[str, float], None] | None = None
        self._refusals_logged_s = -REFUSALS_LOGGED_EVERY_S

    def record(self, method: str, seconds: float) -> None:
        """A call (or a write stream's batch) took `seconds`: timed when metrics are served."""
        timed = self.timed
        if timed is not None:
            timed(method, seconds)

    def _refused(self, method: str, reason: str) -> None:
        """Log a refusal (one line per REFUSALS_LOGGED_EVERY_S: a stranger hammering the
        port must not flood the log), with the totals so far."""
        now_s = time.monotonic()
        if now_s - self._refusals_logged_s >= REFUSALS_LOGGED_EVERY_S:
            self._refusals_logged_s = now_s
            log.warning("refused a call to %s: %s (refused so far: %d unauthenticated, %d "
                        "without the role)", method, reason, self.unauthenticated, self.denied)

    async def admit(self, method: str, context: grpc.aio.ServicerContext) -> Principal:
        """The caller, made current for the servicer; aborts the call if it may not."""
        try:
            # Under --insecure there is no session to read (and no need to build its dict).
            principal = (ANONYMOUS if self.authenticator.insecure
                         else self.authenticator.principal(context.auth_context()))
        except Unauthenticated as error:
            self.unauthenticated += 1
            self._refused(method, str(error))
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, str(error))
        reason = policy.refusal(method, principal)
        if reason is not None:
            self.denied += 1
            self._refused(method, reason)
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, reason)
        if method in AUDITED_METHODS:
            log.info("audit: %s called %s", principal.name, method)
        set_current_principal(principal)
        return principal

    def still_valid(self, principal: Principal) -> None:
        """CallRefused if `principal`'s certificate expired or was revoked meanwhile."""
        try:
            self.authenticator.check_still_valid(principal)
        except Unauthenticated as error:
            self.unauthenticated += 1
            self._refused("a stream", str(error))
            raise CallRefused(grpc.StatusCode.UNAUTHENTICATED, str(error)) from None


Unary = Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]
Streaming = Callable[[AsyncIterator[Any], grpc.aio.ServicerContext], Awaitable[Any]]


def guarded(method: Unary, gate: CallGate | None, guard: Guard, name: str) -> Unary:
    async def handle(request: Any, context: grpc.aio.ServicerContext) -> Any:
        # (One coroutine per call, timed or not: the clock is read whether metrics are
        # served or not, which costs less than a second coroutine would.)
        started_s = time.perf_counter()
        try:
            await guard.admit(name, context)
            if isinstance(request, Refused):
                await context.abort(request.code, request.message)
            if gate is not None and not gate.enter():
                await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED,
                                    f"this node is busy: {gate.limit} calls are in flight; "
                                    "retry shortly or through another node")
            try:
                return await method(request, context)
            except CallRefused as refused:
                await context.abort(refused.code, refused.message)
            finally:
                if gate is not None:
                    gate.leave()
        finally:
            guard.record(name, time.perf_counter() - started_s)

    return handle


def guarded_stream(method: Streaming, guard: Guard, name: str) -> Streaming:
    """A stream's requests reach the method only once decoded; a refused one ends it."""

    async def handle(requests: AsyncIterator[Any], context: grpc.aio.ServicerContext) -> Any:
        principal = await guard.admit(name, context)
        try:
            return await method(checked_requests(requests, guard, principal), context)
        except CallRefused as refused:
            await context.abort(refused.code, refused.message)

    return handle


async def checked_requests(requests: AsyncIterator[Any], guard: Guard, principal: Principal
                           ) -> AsyncIterator[Any]:
    """A stream's requests, each decoded and its caller still valid (a stream outlives
    revocations and expiries: each request is checked); CallRefused ends it."""
    async for request in requests:
        guard.still_valid(principal)
        if isinstance(request, Refused):
            raise CallRefused(request.code, request.message)
        yield request


Replying = Callable[[Any, grpc.aio.ServicerContext], AsyncIterator[Any]]


def guarded_replies(method: Replying, guard: Guard, name: str) -> Replying:
    """A server-streaming method (an async generator) runs only on a decoded request."""

    async def handle(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        await guard.admit(name, context)
        if isinstance(request, Refused):
            await context.abort(request.code, request.message)
        async for reply in method(request, context):
            yield reply

    return handle


def add_service(servicer: object, server: grpc.aio.Server, service: ServiceDescriptor,
                messages: ModuleType, max_request_bytes: int, guard: Guard,
                gate: CallGate | None = None) -> None:
    """Register every method of `service` behind the front door (unary, server-streaming
    and bidirectional streaming methods: the only kinds this program's services have)."""
    handlers = {}
    for method in service.methods:
        request_type = getattr(messages, method.input_type.name)
        reply_type = getattr(messages, method.output_type.name)
        implementation = getattr(servicer, method.name)
        decoder = bounded_decoder(request_type, max_request_bytes)
        name = f"/{service.full_name}/{method.name}"
        if method.client_streaming and method.server_streaming:
            handlers[method.name] = grpc.stream_stream_rpc_method_handler(
                guarded_stream(implementation, guard, name), request_deserializer=decoder,
                response_serializer=reply_type.SerializeToString)
        elif method.server_streaming:
            assert not method.client_streaming, method.name
            handlers[method.name] = grpc.unary_stream_rpc_method_handler(
                guarded_replies(implementation, guard, name), request_deserializer=decoder,
                response_serializer=reply_type.SerializeToString)
        else:
            assert not method.client_streaming, method.name
            handlers[method.name] = grpc.unary_unary_rpc_method_handler(
                guarded(implementation, gate, guard, name), request_deserializer=decoder,
                response_serializer=reply_type.SerializeToString)
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(service.full_name, handlers),))
    server.add_registered_method_handlers(service.full_name, handlers)


def add_health(servicer: health.aio.HealthServicer, server: grpc.aio.Server,
               guard: Guard | None) -> None:
    """The standard health service, behind the guard (None: unguarded, for the plaintext
    listener that answers health checks and nothing else: Check and List, no streams)."""
    service = health_pb2.DESCRIPTOR.services_by_name["Health"]

    def admitted(method: Unary, name: str) -> Unary:
        if guard is None:
            return method

        async def handle(request: Any, context: grpc.aio.ServicerContext) -> Any:
            await guard.admit(name, context)
            return await method(request, context)

        return handle

    def decoder(method_name: str) -> Callable[[bytes], Message | Refused]:
        request_type = getattr(health_pb2, service.methods_by_name[method_name].input_type.name)
        return bounded_decoder(request_type, MAX_HEALTH_REQUEST_BYTES)

    def checked(method: Unary) -> Unary:
        async def handle(request: Any, context: grpc.aio.ServicerContext) -> Any:
            if isinstance(request, Refused):
                await context.abort(request.code, request.message)
            return await method(request, context)

        return handle

    prefix = f"/{service.full_name}/"
    handlers = {
        "Check": grpc.unary_unary_rpc_method_handler(
            admitted(checked(servicer.Check), prefix + "Check"),
            request_deserializer=decoder("Check"),
            response_serializer=health_pb2.HealthCheckResponse.SerializeToString),
        "List": grpc.unary_unary_rpc_method_handler(
            admitted(checked(servicer.List), prefix + "List"),
            request_deserializer=decoder("List"),
            response_serializer=health_pb2.HealthListResponse.SerializeToString),
    }
    if guard is not None:
        # Watch writes its replies itself (context.write) rather than yielding them. Not
        # on the plaintext listener: anyone could hold its few calls open with it.
        handlers["Watch"] = grpc.unary_stream_rpc_method_handler(
            admitted(checked(servicer.Watch), prefix + "Watch"),
            request_deserializer=decoder("Watch"),
            response_serializer=health_pb2.HealthCheckResponse.SerializeToString)
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(service.full_name, handlers),))
