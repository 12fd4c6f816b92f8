"""How long a server may work on a call: most of the caller's deadline, never all of it."""

from __future__ import annotations

import grpc

DEFAULT_DEADLINE_S = 10.0  # a caller that set no deadline
DEADLINE_SHARE = 0.8  # give up early enough that the caller hears why


def time_budget_s(context: grpc.aio.ServicerContext, max_deadline_s: float) -> float:
    """About 80% of the time the caller has left, and never more than `max_deadline_s`."""
    remaining = context.time_remaining()
    if remaining is None:
        remaining = DEFAULT_DEADLINE_S
    return max(0.0, min(remaining, max_deadline_s) * DEADLINE_SHARE)
