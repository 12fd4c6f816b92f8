"""gRPC server reflection, behind the front door: `grpcurl HOST:PORT list` (and
`describe`) without the .proto files, for any authenticated caller.

The well-kept `grpcio-reflection` answers the questions; the front door still
authenticates and authorises the stream (any role: it reveals the API's shape, no
data) and bounds and checks every request on it, as it does for every service.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2

from ledger.server.front_door import CallRefused, Guard, bounded_decoder, checked_requests

SERVICE_NAME = reflection.SERVICE_NAME
METHOD = f"/{SERVICE_NAME}/ServerReflectionInfo"


def add_reflection(server: grpc.aio.Server, guard: Guard, service_names: Sequence[str],
                   max_request_bytes: int) -> None:
    """Serve reflection of `service_names` (and of itself) on `server`."""
    servicer = reflection.aio.ReflectionServicer([*service_names, SERVICE_NAME])

    async def handle(requests: AsyncIterator[Any], context: grpc.aio.ServicerContext
                     ) -> AsyncIterator[reflection_pb2.ServerReflectionResponse]:
        principal = await guard.admit(METHOD, context)
        try:
            async for reply in servicer.ServerReflectionInfo(
                    checked_requests(requests, guard, principal), context):
                yield reply
        except CallRefused as refused:
            await context.abort(refused.code, refused.message)

    handler = grpc.stream_stream_rpc_method_handler(
        handle,
        request_deserializer=bounded_decoder(reflection_pb2.ServerReflectionRequest,
                                             max_request_bytes),
        response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString)
    handlers = {"ServerReflectionInfo": handler}
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(SERVICE_NAME, handlers),))
    server.add_registered_method_handlers(SERVICE_NAME, handlers)
