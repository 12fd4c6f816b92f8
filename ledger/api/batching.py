"""When a write stream's next batch should leave: shared by the client library's streams
and the nodes' forwarding streams (pure: the callers bring the clock).

A batch leaves at once when the receiving node has none of this stream's in hand, so
an idle caller never waits for a timer. While it works on some, a batch leaves once
enough has queued to be worth a message, or a short hold after the last one left: so
batches grow with the load, as group commit does, and a slow batch (one waiting out a
hung leader, say) holds nobody's writes back for longer than the hold.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from ledger.accounts.validation import MAX_BATCH_OPERATIONS

T = TypeVar("T")
R = TypeVar("R")

#: Operations worth a batch of their own while the node still works on earlier ones.
MIN_BATCH_WHILE_BUSY = 64
#: While the node works on earlier batches, fewer operations wait at most this long
#: after the last batch left.
MAX_HOLD_S = 0.020
#: Batches sent and not yet answered: the node works on at most this many of one
#: stream's at once (`server.write_stream.MAX_BATCHES_IN_FLIGHT`).
MAX_BATCHES_IN_FLIGHT = 64
#: Batches are merged from several callers' groups only up to this many bytes: a node
#: refuses a request past its limit (4 MiB by default) and ends the stream with it, so a
#: merged batch must stay well below; one caller's group alone goes whatever its size,
#: as its unary call would.
MAX_MERGED_BYTES = 1 << 20
#: A stream nothing has used for this long is closed (the next write opens another):
#: every open stream holds one of the node's call places.
IDLE_CLOSE_S = 30.0
#: The most `StreamRequest.timeout_ms` can say (a uint32); nodes cap it far lower.
MAX_TIMEOUT_MS = 2**32 - 1


def due_in_s(queued_operations: int, batches_in_flight: int, since_last_sent_s: float
             ) -> float | None:
    """Seconds until the next batch should leave: 0 now, None not until something
    changes (an operation queued, an answer came)."""
    if queued_operations == 0 or batches_in_flight >= MAX_BATCHES_IN_FLIGHT:
        return None
    if batches_in_flight == 0 or queued_operations >= MIN_BATCH_WHILE_BUSY:
        return 0.0
    return max(0.0, MAX_HOLD_S - since_last_sent_s)


def timeout_ms(seconds_left: float) -> int:
    """`StreamRequest.timeout_ms` for a batch whose longest-waiting caller has
    `seconds_left`: at least 1 (0 would mean the node's maximum), at most a uint32."""
    return min(max(1, int(seconds_left * 1000)), MAX_TIMEOUT_MS)


def weight(operations: int) -> int:
    """What a caller's group of `operations` counts for `due_in_s`: an empty one (a
    submit of nothing) counts as one, or it would never be due."""
    return max(1, operations)


def take_front(queue: Sequence[T], live: Callable[[T], bool], operations: Callable[[T], int],
               size_bytes: Callable[[T], int]) -> tuple[int, list[T]]:
    """The next batch from the front of `queue`: how many items it takes off the queue,
    and the live ones among them, which go. Whole items only, as many as fit
    MAX_BATCH_OPERATIONS and MAX_MERGED_BYTES, and always the first live one whatever
    its size (one caller's group is what its unary call would have carried)."""
    batch: list[T] = []
    count = total_bytes = taken = 0
    for item in queue:
        if batch and (count + operations(item) > MAX_BATCH_OPERATIONS
                      or total_bytes + size_bytes(item) > MAX_MERGED_BYTES):
            break
        taken += 1
        if not live(item):
            continue
        batch.append(item)
        count += operations(item)
        total_bytes += size_bytes(item)
    return taken, batch


def split_results(counts: Sequence[int], results: Sequence[R]) -> list[Sequence[R]] | None:
    """A batch's results, cut into each group's share (`counts`: its groups' operation
    counts, in order); None if the node answered another number of results than the
    batch had operations (a node that breaks the contract: fail, do not guess)."""
    if len(results) != sum(counts):
        return None
    shares: list[Sequence[R]] = []
    start = 0
    for count in counts:
        shares.append(results[start:start + count])
        start += count
    return shares
