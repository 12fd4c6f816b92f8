"""Forwarding an account's writes to the node that leads it, instead of fighting it.

The leader holds a range promise on the account (the fast path), so it decides
writes in one round trip; a second proposer would only make the two duel. A leader
that does not answer is suspected for a while and the writes are decided here: the
same request ids make that safe whatever the leader did with them.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from ledger import errors
from ledger.accounts import WriteRequest
from ledger.bank.model import TransactionResult
from ledger.bank.requests import PendingWrite, as_write
from ledger.node.consensus import Consensus

#: Sends writes to another node's bank and returns its results, in order.
Forward = Callable[[int, list[WriteRequest], float],
                   Awaitable[list[TransactionResult | errors.LedgerError]]]

SUSPECT_S = 2.0  # a leader that failed a forward is bypassed this long


class Forwarding:
    """Where an account's writes should be decided, and sending them there."""

    def __init__(self, consensus: Consensus, forward: Forward | None) -> None:
        self._consensus = consensus
        self._forward = forward
        self._suspects: dict[int, float] = {}  # node -> monotonic time to trust it again
        self.forwarded_batches = 0

    def leader_for(self, account: str, batch: list[PendingWrite]) -> int | None:
        """Another node leading this account, to forward to rather than fight with.

        A transfer's operations are decided where they arise: the public API that
        forwards speaks of transfers whole, not of their debits, credits and refunds.
        """
        if self._forward is None or any(r.forwarded or r.operation.kind.in_transfer
                                        for r in batch):
            return None
        leader = self._consensus.leader_hint(account)
        if leader is None or self._suspects.get(leader, 0.0) > time.monotonic():
            return None
        return leader

    async def forward(self, leader: int, batch: list[PendingWrite]) -> list[PendingWrite]:
        """Let the leader decide the batch; the requests it did not decide, to be decided
        here (each marked so). If the leader does not answer, or answers Unavailable (no
        majority in time, or the account quarantined there), it is suspected for a while;
        the same request ids make deciding here safe whatever it did."""
        assert self._forward is not None
        # Keep half of the time for deciding here should the leader not answer.
        budget_s = (min(r.deadline for r in batch) - time.monotonic()) / 2
        try:
            results = await self._forward(leader, [as_write(r) for r in batch],
                                          max(budget_s, 0.001))
        except errors.Unavailable:
            results = [errors.Unavailable("the leader did not answer")] * len(batch)
        else:
            self.forwarded_batches += 1
        undecided = []
        for request, result in zip(batch, results, strict=True):
            if isinstance(result, errors.Unavailable):
                request.forwarded = True  # decide it here next time round
                undecided.append(request)
            elif isinstance(result, errors.LedgerError):
                request.fail(result)
            else:
                request.succeed(result)
        if undecided:
            self._suspects[leader] = time.monotonic() + SUSPECT_S
        return undecided
