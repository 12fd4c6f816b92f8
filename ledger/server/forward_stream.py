"""One long-lived `Ledger.SubmitStream` to another node, for the writes this node
forwards there.

Each account's worker forwards its own batch, so a node receiving writes for accounts
another node leads forwards many small batches. They queue here, and a sender task
writes what has queued as one stream message when `ledger.api.batching` says it is
due (at once when the leader has none of ours in hand, else once enough has queued
or a short hold has passed): one message, and one call's worth of work on both
nodes, for many accounts' writes, where a unary Submit per batch cost every
forwarded write a call. A stream that breaks fails every forward waiting on it (the
caller then decides those writes itself, safely: same request ids); the next forward
opens a new stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import grpc

from ledger import errors
from ledger.api import batching
from ledger.v1 import ledger_pb2 as pb

OpenCall = Callable[[], grpc.aio.StreamStreamCall]


@dataclass(slots=True, eq=False)
class _Forward:
    operations: Sequence[pb.BatchOperation]
    principals: Sequence[str]
    deadline: float  # time.monotonic()
    future: asyncio.Future[Sequence[pb.OperationResult]]
    size_bytes: int  # of its operations and principals, as they go in a request


class ForwardStream:
    """Forwards to one node; `submit` from the event loop's tasks only."""

    def __init__(self, open_call: OpenCall, node_id: str) -> None:
        self._open_call = open_call
        self._node_id = node_id
        self._queued: list[_Forward] = []
        self._sent: dict[int, list[_Forward]] = {}
        self._tags = itertools.count(1)
        self._wake = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None
        self.messages_sent = 0  # stream messages: batches that carried forwards

    async def submit(self, operations: Sequence[pb.BatchOperation],
                     principals: Sequence[str], timeout_s: float
                     ) -> Sequence[pb.OperationResult]:
        """The node's results for `operations` (one per operation, in order);
        errors.Unavailable if it did not answer within `timeout_s`."""
        size_bytes = (sum(operation.ByteSize() for operation in operations)
                      + sum(len(principal) + 2 for principal in principals))
        forward = _Forward(operations, principals, time.monotonic() + timeout_s,
                           asyncio.get_running_loop().create_future(), size_bytes)
        self._queued.append(forward)
        self._wake.set()
        if self._runner is None:
            self._runner = asyncio.create_task(self._run())
        try:
            async with asyncio.timeout(timeout_s):
                return await forward.future
        except TimeoutError:
            raise errors.Unavailable(
                f"node {self._node_id} did not decide forwarded writes in time") from None

    async def close(self) -> None:
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner
        self._fail_waiting("this node is stopping")  # a runner cancelled before it ran

    async def _run(self) -> None:
        failure = "the stream ended"
        call: grpc.aio.StreamStreamCall | None = None
        reader: asyncio.Task[str] | None = None
        last_sent_s = 0.0
        try:
            call = self._open_call()
            reader = asyncio.create_task(self._read(call))
            while not reader.done():
                queued = sum(batching.weight(len(f.operations)) for f in self._queued)
                due_in = batching.due_in_s(queued, len(self._sent),
                                           time.monotonic() - last_sent_s)
                if due_in != 0:
                    self._wake.clear()
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(due_in):
                            await self._wake.wait()
                    continue
                request = self._next_request()
                if request is not None:
                    await call.write(request)
                    last_sent_s = time.monotonic()
                    self.messages_sent += 1
            if reader.done() and not reader.cancelled():
                failure = reader.result()
        except grpc.aio.AioRpcError as error:
            failure = f"{error.code().name}: {error.details()}"
        except (grpc.aio.UsageError, grpc.RpcError, asyncio.InvalidStateError) as error:
            failure = repr(error)  # a call that could not open, or ended meanwhile
        finally:
            if call is not None:
                call.cancel()
            if reader is not None:
                reader.cancel()
            self._runner = None
            self._fail_waiting(failure)

    def _fail_waiting(self, failure: str) -> None:
        """Every forward still waiting fails Unavailable (its caller decides it then)."""
        stranded = [f for batch in self._sent.values() for f in batch] + self._queued
        self._sent.clear()
        self._queued = []
        for forward in stranded:
            if not forward.future.done():
                forward.future.set_exception(errors.Unavailable(
                    f"node {self._node_id} did not decide forwarded writes: {failure}"))

    def _next_request(self) -> pb.StreamRequest | None:
        """Whole forwards from the front of the queue, as many as fit in one batch;
        forwards whose callers gave up are dropped unsent."""
        taken, batch = batching.take_front(self._queued, lambda f: not f.future.done(),
                                           lambda f: len(f.operations), lambda f: f.size_bytes)
        del self._queued[:taken]
        if not batch:
            return None
        tag = next(self._tags)
        self._sent[tag] = batch
        seconds_left = max(f.deadline for f in batch) - time.monotonic()
        return pb.StreamRequest(
            tag=tag, operations=[op for f in batch for op in f.operations],
            on_behalf_of=[p for f in batch for p in f.principals],
            timeout_ms=batching.timeout_ms(seconds_left))

    async def _read(self, call: grpc.aio.StreamStreamCall) -> str:
        """Hand replies to their forwards until the stream ends; why it ended."""
        try:
            while (reply := await call.read()) is not grpc.aio.EOF:
                batch = self._sent.pop(reply.tag, None)
                if batch is not None:
                    _answer(batch, reply.results)
                self._wake.set()  # a place for another batch in flight
            return "the node ended the stream"
        except grpc.aio.AioRpcError as error:
            return f"{error.code().name}: {error.details()}"  # the sender fails what waits
        finally:
            self._wake.set()  # the sender sees the stream ended


def _answer(batch: list[_Forward], results: Sequence[pb.OperationResult]) -> None:
    shares = batching.split_results([len(f.operations) for f in batch], results)
    for index, forward in enumerate(batch):
        if forward.future.done():
            continue
        if shares is None:
            forward.future.set_exception(errors.Unavailable(
                f"the node answered {len(results)} results for "
                f"{sum(len(f.operations) for f in batch)} operations"))
        else:
            forward.future.set_result(shares[index])
