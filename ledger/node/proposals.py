"""Proposals waiting for their account's next slot: one in flight per account, in order.

There is no pipelining: a node proposes at an account's next undecided slot only,
so a second proposal on the same account waits until the first is decided (or its
caller gives up). The driver owns one `ProposalQueues` and feeds it to the core
turn by turn.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass

from ledger.node.consensus import AccountQuarantined
from ledger.paxos import Outcome, PaxosNode, ProposalInProgress, Quarantined, Ready


@dataclass(slots=True, eq=False)
class Proposal:
    account: str
    value: bytes
    future: asyncio.Future[Outcome | None]
    expected_slot: int | None = None  # propose only if this is still the next slot


#: Proposals in flight at once, over all accounts; the rest wait their turn. Enough to
#: keep every peer stream busy, few enough that a burst of new accounts (each a Paxos
#: instance with its own Phase 1) does not hold the state of thousands at once.
MAX_PROPOSALS_IN_FLIGHT = 256


class ProposalQueues:
    """Every account's waiting proposals and the one it has in flight."""

    def __init__(self, max_in_flight: int = MAX_PROPOSALS_IN_FLIGHT) -> None:
        self._max_in_flight = max_in_flight
        self._waiting: dict[str, deque[Proposal]] = defaultdict(deque)
        self._active: dict[str, Proposal] = {}
        self.started = 0  # proposals handed to the core since start
        # Proposals whose expected slot moved while their account's applied state trails
        # its chosen prefix: answered (None) once it caught up.
        self.behind: dict[str, list[Proposal]] = {}

    def add(self, proposal: Proposal) -> None:
        self._waiting[proposal.account].append(proposal)

    def waiting(self) -> int:
        return sum(len(queue) for queue in self._waiting.values())

    def startable(self) -> bool:
        """Could a turn start a proposal now?"""
        return len(self._active) < self._max_in_flight and any(
            queue and account not in self._active for account, queue in self._waiting.items())

    def cancel(self, proposal: Proposal, core: PaxosNode, now_ms: int) -> Ready | None:
        """Its caller gave up: forget it (the core keeps driving a slot it started)."""
        if self._active.get(proposal.account) is proposal:
            del self._active[proposal.account]
            return core.cancel(proposal.account, now_ms)
        queue = self._waiting.get(proposal.account)
        if queue is not None and proposal in queue:
            queue.remove(proposal)
        return None

    def start(self, core: PaxosNode, now_ms: int, take: Callable[[Ready], None],
              before_propose: Callable[[str], None], applied_slot: Callable[[str], int]
              ) -> None:
        """Hand the core the first waiting proposal of every account with none in flight."""
        for account in [a for a, queue in self._waiting.items() if not queue]:
            del self._waiting[account]  # keep this scan as short as the accounts in play
        # A copy: starting a proposal may raise an alarm that fails the account's queue.
        for account, queue in list(self._waiting.items()):
            while queue and queue[0].future.done():
                queue.popleft()  # its caller gave up before it started
            if not queue or account in self._active:
                continue
            if len(self._active) >= self._max_in_flight:
                break
            proposal = queue[0]
            expected = proposal.expected_slot
            if expected is not None and core.chosen_through(account) + 1 != expected:
                queue.popleft()
                if (applied_slot(account) < core.chosen_through(account)
                        and core.quarantine_reason(account) is None):
                    # The state machine holds chosen entries back: answer once it has
                    # applied them, so the caller checks against a prefix that moved.
                    self.behind.setdefault(account, []).append(proposal)
                else:
                    proposal.future.set_result(None)
                continue
            before_propose(account)
            try:
                ready = core.propose(account, proposal.value, now_ms)
            except ProposalInProgress:
                continue  # a cancelled proposal of ours is still settling; try next turn
            except Quarantined as quarantined:
                queue.popleft()
                proposal.future.set_exception(AccountQuarantined(str(quarantined)))
                continue
            queue.popleft()
            self._active[account] = proposal
            self.started += 1
            # To the back of the order: under the in-flight cap every account gets its turn.
            if self._waiting.get(account) is queue:
                del self._waiting[account]
                self._waiting[account] = queue
            take(ready)

    def finish(self, outcome: Outcome) -> bool:
        """Report an outcome to its proposal; True if the account has more waiting."""
        proposal = self._active.get(outcome.account)
        if proposal is None or proposal.value != outcome.proposed:
            return False
        del self._active[outcome.account]
        if not proposal.future.done():
            proposal.future.set_result(outcome)
        return bool(self._waiting.get(outcome.account))

    def caught_up(self, account: str) -> None:
        """`account` is applied through its chosen prefix: its proposals behind may retry."""
        for proposal in self.behind.pop(account, []):
            if not proposal.future.done():
                proposal.future.set_result(None)

    def fail_account(self, account: str, error: Exception) -> None:
        """Every proposal on `account`, in flight or waiting, fails with `error`."""
        proposal = self._active.pop(account, None)
        waiting = [*self._waiting.pop(account, ()), *self.behind.pop(account, [])]
        for failed in [proposal, *waiting]:
            if failed is not None and not failed.future.done():
                failed.future.set_exception(error)

    def fail_active(self, error: Exception) -> None:
        """Every proposal in flight fails with `error` (the node cannot persist)."""
        for proposal in list(self._active.values()):
            if not proposal.future.done():
                proposal.future.set_exception(error)
