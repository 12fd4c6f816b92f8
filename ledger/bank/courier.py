"""Completing transfers nobody is completing: any node finishes what it finds pending.

A transfer's proposer delivers its credit right after the debit. If it dies in
between (or its deadline passes), the transfer stays in the source's "pending"
table on every replica that applied the debit: the courier of the node that leads
the source (or of every node, while no leader is known, or once the transfer is old
enough that its leader seems gone) delivers it. It reads that
table a page at a time, never the accounts or their logs: finding what is pending
after a crash costs what is pending, not what is stored. Delivering twice is
harmless (the credit and the refund are keyed once per transfer).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from ledger import errors
from ledger.bank.state_machine import LedgerStateMachine
from ledger.bank.transfers import Transfers
from ledger.node.consensus import Consensus

log = logging.getLogger(__name__)

INTERVAL_S = 1.0  # how often the pending table is looked at
GRACE_MS = 2_000  # a transfer younger than this is left to its proposer
ORPHAN_MS = 10_000  # one older than this, every node delivers (its leader may be dead)
MAX_PER_ROUND = 256  # transfers delivered at once, at most
DELIVERY_TIMEOUT_S = 10.0


class Courier:
    def __init__(self, consensus: Consensus, machine: LedgerStateMachine, transfers: Transfers,
                 clock_ms: Callable[[], int]) -> None:
        self._consensus = consensus
        self._machine = machine
        self._transfers = transfers
        self._clock_ms = clock_ms
        self._after = b""  # where the next page of the pending table starts
        self.delivered = 0  # transfers this node completed for a proposer that did not

    async def run(self) -> None:
        while True:
            await asyncio.sleep(INTERVAL_S)
            try:
                await self.round()
            except errors.LedgerError as error:  # e.g. a storage error: next round retries
                log.warning("completing pending transfers: %s", error)

    async def round(self, grace_ms: int = GRACE_MS) -> int:
        """Deliver one page of the pending transfers old enough; how many were delivered."""
        page, self._after = self._machine.pending_transfers(self._after, MAX_PER_ROUND)
        now_ms = self._clock_ms()
        due = [(source, transfer) for source, transfer, debited_at_ms in page
               if now_ms - debited_at_ms >= grace_ms
               and (self._consensus.leader_hint(source) is None
                    or now_ms - debited_at_ms >= ORPHAN_MS)]
        deadline = time.monotonic() + DELIVERY_TIMEOUT_S
        outcomes = await asyncio.gather(
            *(self._transfers.deliver(source, transfer, deadline) for source, transfer in due),
            return_exceptions=True)
        delivered = 0
        for (source, transfer), outcome in zip(due, outcomes, strict=True):
            if isinstance(outcome, errors.LedgerError):
                log.info("transfer %r from %r is still pending: %s", transfer.request_id,
                         source, outcome)
            elif isinstance(outcome, BaseException):
                raise outcome  # a bug: let it be seen
            else:
                delivered += 1
        self.delivered += delivered
        return delivered
