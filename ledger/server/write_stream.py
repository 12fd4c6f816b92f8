"""The server's half of `Ledger.SubmitStream`: batches of writes decided concurrently,
each answered as soon as it is decided.

A client's batches are independent (its library coalesces unrelated callers into
them), so the node works on up to MAX_BATCHES_IN_FLIGHT of them at once and writes each
reply when its batch is done. A client that sends faster than that, or never reads its
replies, is held back by gRPC's flow control: the stream is not read further, nothing
queues without bound. Each batch also counts as one public call in flight (the front
door's gate): past that limit the batch is refused whole, RESOURCE_EXHAUSTED, without
ending the stream.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import grpc

from ledger import errors
from ledger.api import wire
from ledger.server.deadlines import DEADLINE_SHARE
from ledger.server.front_door import CallGate, CallRefused
from ledger.v1 import ledger_pb2 as pb

log = logging.getLogger(__name__)

#: Batches of one stream being decided at once; the stream is read no further meanwhile.
MAX_BATCHES_IN_FLIGHT = 64
#: A stream with nothing sent and nothing being decided for this long is ended (clients
#: close theirs after `api.batching.IDLE_CLOSE_S`; this bounds the ones that do not).
MAX_IDLE_S = 120.0

#: Decides one batch within a time budget: one result per operation (a LedgerError
#: refuses the batch whole).
Decide = Callable[[pb.StreamRequest, float], Awaitable[list[pb.OperationResult]]]
#: Told how long a batch took (the method's name, seconds), for the latency histogram.
Record = Callable[[str, float], None]
STREAM_METHOD = "SubmitStream"


def unrecorded(method: str, seconds: float) -> None:
    """Nobody measures this stream's batches."""


def batch_budget_s(timeout_ms: int, max_deadline_s: float) -> float:
    """How long the node works on a batch: most of what the client allowed (as for a
    call's deadline), never more than the node's maximum."""
    allowed_s = timeout_ms / 1000 if timeout_ms > 0 else max_deadline_s
    return min(allowed_s, max_deadline_s) * DEADLINE_SHARE


def refused_whole(operations: int, error: errors.LedgerError) -> list[pb.OperationResult]:
    result = wire.operation_result(error)
    return [result] * operations


async def serve(requests: AsyncIterator[pb.StreamRequest],
                context: grpc.aio.ServicerContext, decide: Decide, gate: CallGate | None,
                max_deadline_s: float, record: Record = unrecorded) -> None:
    """Answer every batch the client sends until it half-closes (then the rest are
    answered before the stream ends) or the call ends; `record` is told how long each
    batch took, as method "SubmitStream"."""
    finished: asyncio.Queue[pb.StreamReply | Exception | None] = asyncio.Queue()
    places = asyncio.Semaphore(MAX_BATCHES_IN_FLIGHT)
    deciding: set[asyncio.Task[None]] = set()

    async def answer(request: pb.StreamRequest) -> None:
        started_s = time.perf_counter()
        operations = request.operations
        if gate is not None and not gate.enter():
            results = refused_whole(len(operations), errors.Busy(
                f"this node is busy: {gate.limit} calls are in flight; retry shortly or "
                "through another node"))
        else:
            try:
                results = await decide(request,
                                       batch_budget_s(request.timeout_ms, max_deadline_s))
            except errors.LedgerError as error:  # the batch as a whole (too many operations)
                results = refused_whole(len(operations), error)
            except Exception as error:  # a bug: end the stream, guess no answer
                log.exception("a write stream's batch failed")
                finished.put_nowait(error)
                return
            finally:
                if gate is not None:
                    gate.leave()
        finished.put_nowait(pb.StreamReply(tag=request.tag, results=results))
        record(STREAM_METHOD, time.perf_counter() - started_s)

    async def read() -> None:
        incoming = aiter(requests)
        try:
            while True:
                try:
                    # A stream that carries nothing holds one of the node's call places:
                    # one idle this long (nothing being decided either) is ended.
                    async with asyncio.timeout(None if deciding else MAX_IDLE_S):
                        request = await anext(incoming)
                except StopAsyncIteration:
                    break
                except TimeoutError:
                    log.info("ended a write stream idle for %.0f s", MAX_IDLE_S)
                    break
                await places.acquire()
                task = asyncio.create_task(answer(request))
                deciding.add(task)
                task.add_done_callback(deciding.discard)
            if deciding:
                await asyncio.wait(set(deciding))  # a client that half-closes hears them all
        finally:
            finished.put_nowait(None)

    reader = asyncio.create_task(read())
    try:
        while (reply := await finished.get()) is not None:
            if isinstance(reply, Exception):
                raise CallRefused(grpc.StatusCode.INTERNAL,
                                  f"this node failed to decide a batch: {reply!r}")
            await context.write(reply)
            places.release()
        await reader  # a request refused while reading ends the stream (CallRefused)
    finally:
        reader.cancel()
        for task in list(deciding):
            task.cancel()
