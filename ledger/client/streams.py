"""The client's half of `Ledger.SubmitStream`: one long-lived stream per node, into which
concurrent callers' writes are coalesced.

Callers on any number of threads hand in groups of operations (one for a deposit, many
for a submit) and wait for their own results. A sender (gRPC's request-iterator thread)
sends what has queued as one batch when `ledger.api.batching` says it is due: at once
when the node has none of ours, else once enough has queued or a short hold has
passed. So a busy client pays the node one message for many callers, and an idle one
waits for no timer (TigerBeetle's clients batch the same way). A reader thread hands
each batch's results back to the callers it came from.

A stream that breaks fails every group still waiting on it with the gRPC status it
ended with; the client then retries those writes, with their request ids, elsewhere (so
nothing applies twice), and the next write opens a new stream.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator, Sequence

import grpc

from ledger.api import batching
from ledger.v1 import ledger_pb2 as pb
from ledger.v1 import ledger_pb2_grpc as pb_grpc

#: Groups queued behind a stream that sends nothing (a hung node) past which those whose
#: callers gave up are dropped, so a hang costs memory for the callers still waiting only.
PRUNE_QUEUE_AT = 256


class StreamBroken(grpc.RpcError):
    """The stream ended before a group's results came back: its status says why (read
    as a failed call's would be, so callers handle both alike)."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(f"{code.name}: {details}")
        self._code = code
        self._details = details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details

    def trailing_metadata(self) -> tuple[tuple[str, str], ...]:
        return ()


class Group:
    """Operations that travel in one batch and are answered together, with their
    caller's deadline; `wait` blocks the caller until the results (or a failure) arrive."""

    __slots__ = ("_done", "abandoned", "deadline", "failure", "operations", "results",
                 "size_bytes")

    def __init__(self, operations: Sequence[pb.BatchOperation], deadline: float) -> None:
        self.operations = operations
        self.deadline = deadline
        self.size_bytes = sum(operation.ByteSize() for operation in operations)
        self.abandoned = False  # its caller stopped waiting: not sent if not sent yet
        self.results: Sequence[pb.OperationResult] = ()
        self.failure: StreamBroken | None = None
        # A lock held until the group is settled is the cheapest thing a thread can wait
        # on with a timeout (an Event is a condition variable plus a lock).
        self._done = threading.Lock()
        self._done.acquire()

    def settle(self, results: Sequence[pb.OperationResult] = (),
               failure: StreamBroken | None = None) -> None:
        self.results, self.failure = results, failure
        self._done.release()

    def wait(self, timeout_s: float) -> bool:
        """True once settled; False if `timeout_s` passed first (the group is then
        abandoned: a stream that has not sent it yet never will)."""
        if self._done.acquire(timeout=max(0.0, timeout_s)):
            return True
        self.abandoned = True
        return False


class WriteStream:
    """One node's write stream, opened on first use and again after it breaks."""

    def __init__(self, stub: pb_grpc.LedgerStub) -> None:
        self._stub = stub
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._queued: list[Group] = []
        self._queued_operations = 0
        self._sent: dict[int, list[Group]] = {}
        self._last_sent_s = 0.0
        self._tags = itertools.count(1)
        self._open = False
        self._generation = 0  # which stream is open: a new one after each that ends
        self._closed = False
        self._unimplemented = False

    @property
    def unimplemented(self) -> bool:
        """The node does not offer the stream (an older version): use the unary calls."""
        return self._unimplemented

    def send(self, group: Group) -> None:
        """Queue `group` for the next batch; its caller then waits on it."""
        with self._lock:
            if self._closed:
                group.settle(failure=StreamBroken(grpc.StatusCode.CANCELLED,
                                                  "the client was closed"))
                return
            if len(self._queued) >= PRUNE_QUEUE_AT:
                self._drop_abandoned()  # a node that hangs: its callers gave up meanwhile
            self._queued.append(group)
            self._queued_operations += _weight(group)
            if not self._open:
                self._open = True
                calls = self._stub.SubmitStream(self._batches(self._generation))
                threading.Thread(target=self._read, args=(calls, self._generation),
                                 daemon=True, name="ledger-write-stream").start()
            else:
                self._wake.notify()

    def _drop_abandoned(self) -> None:
        self._queued = [group for group in self._queued if not group.abandoned]
        self._queued_operations = sum(_weight(group) for group in self._queued)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._wake.notify_all()

    def _batches(self, generation: int) -> Iterator[pb.StreamRequest]:
        """One stream's requests: each one all that queued meanwhile, up to the limit;
        they end when the stream does (a later stream has its own)."""
        while True:
            with self._lock:
                while self._generation == generation and not self._closed:
                    idle_s = time.monotonic() - self._last_sent_s
                    due_in = batching.due_in_s(self._queued_operations, len(self._sent),
                                               idle_s)
                    if due_in == 0:
                        break
                    if due_in is None and not self._queued and not self._sent:
                        if idle_s >= batching.IDLE_CLOSE_S:
                            # Half-close: the node ends the stream and frees its place;
                            # the next write opens another.
                            self._open = False
                            self._generation += 1
                            return
                        due_in = batching.IDLE_CLOSE_S - idle_s
                    self._wake.wait(due_in)
                if self._generation != generation or self._closed:
                    return
                batch, operations = self._take()
                if not batch:
                    continue  # every group taken had been given up on
                tag = next(self._tags)
                self._sent[tag] = batch
                self._last_sent_s = time.monotonic()
            seconds_left = max(group.deadline for group in batch) - time.monotonic()
            yield pb.StreamRequest(tag=tag, operations=operations,
                                   timeout_ms=batching.timeout_ms(seconds_left))

    def _take(self) -> tuple[list[Group], list[pb.BatchOperation]]:
        """The next batch (`batching.take_front`); groups whose callers gave up are
        dropped from the queue unsent."""
        taken, batch = batching.take_front(self._queued, lambda group: not group.abandoned,
                                           lambda group: len(group.operations),
                                           lambda group: group.size_bytes)
        for group in self._queued[:taken]:
            self._queued_operations -= _weight(group)
        del self._queued[:taken]
        return batch, [operation for group in batch for operation in group.operations]

    def _read(self, replies: Iterator[pb.StreamReply], generation: int) -> None:
        # Whatever ends this thread, nobody may be left waiting without an answer.
        failure = StreamBroken(grpc.StatusCode.UNKNOWN, "the client's stream reader failed")
        try:
            for reply in replies:
                with self._lock:
                    batch = self._sent.pop(reply.tag, None)
                    self._wake.notify()  # a place for another batch in flight
                if batch is None:
                    continue  # not a tag this stream sent: nothing waits for it
                self._answer(batch, reply.results)
            failure = StreamBroken(grpc.StatusCode.UNAVAILABLE,
                                   "the node ended the stream before answering: the outcome "
                                   "is unknown, and retrying with the same request id is safe")
        except grpc.RpcError as error:
            failure = _stranded_failure(error.code(), error.details() or "", self._closed)
        finally:
            stranded: list[Group] = []
            with self._lock:
                # A stream closed for idleness was already superseded: what waits now is
                # the next stream's.
                if self._generation == generation:
                    self._open = False
                    self._generation += 1
                    self._wake.notify_all()  # the ended stream's sender returns
                    if failure.code() is grpc.StatusCode.UNIMPLEMENTED:
                        self._unimplemented = True
                    stranded = [g for batch in self._sent.values() for g in batch]
                    stranded += self._queued
                    self._sent.clear()
                    self._queued = []
                    self._queued_operations = 0
            for group in stranded:
                group.settle(failure=failure)

    @staticmethod
    def _answer(batch: list[Group], results: Sequence[pb.OperationResult]) -> None:
        shares = batching.split_results([len(group.operations) for group in batch], results)
        if shares is None:
            broken = StreamBroken(grpc.StatusCode.INTERNAL,
                                  f"the node answered {len(results)} results for a batch of "
                                  f"{sum(len(group.operations) for group in batch)} operations")
            for group in batch:
                group.settle(failure=broken)
            return
        for group, share in zip(batch, shares, strict=True):
            group.settle(share)


def _weight(group: Group) -> int:
    return batching.weight(len(group.operations))


#: Statuses that end a stream before the node read any batch of it (its front door
#: refused the caller, or the node has no such RPC): nothing was written.
_REFUSED_AT_THE_DOOR = {grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED,
                        grpc.StatusCode.UNIMPLEMENTED}


def _stranded_failure(code: grpc.StatusCode, details: str, closed: bool = False
                      ) -> StreamBroken:
    """What the callers still waiting on a stream that ended hear. The stream's status is
    about the stream, not their writes (one caller's oversized batch ends it for all, and
    batches being decided may be applied): unless the caller itself was refused, or
    closed the client (`closed`), their outcome is unknown, and retrying with the same
    request ids, elsewhere, is safe."""
    if code in _REFUSED_AT_THE_DOOR or (code is grpc.StatusCode.CANCELLED and closed):
        return StreamBroken(code, details)
    return StreamBroken(grpc.StatusCode.UNAVAILABLE,
                        f"the stream to the node ended ({code.name}: {details}): the outcome "
                        "is unknown, and retrying with the same request id is safe")
