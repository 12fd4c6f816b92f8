"""What the core raises: a call it refuses, and a broken invariant.

Invariant checks that an input can reach (a peer's message, the driver's
envelope) raise explicitly instead of asserting, so `python -O` keeps them.
They subclass AssertionError: a broken invariant is a bug somewhere, never a
condition to recover from, and the simulator records every AssertionError as a
violation.
"""

from __future__ import annotations


class ProposalInProgress(Exception):
    """The account already has a proposal of this node in flight (no pipelining)."""


class InvariantViolation(AssertionError):
    """An input broke an invariant the core relies on (a bug in a peer or the driver)."""


class RoundsExhausted(Exception):
    """A ballot above every round seen would pass MAX_ROUND: this account cannot be
    proposed on by this node any more (a peer used a round near the bound)."""


class Quarantined(Exception):
    """The account is quarantined on this node (an alarm said why): no proposals, no reads."""
