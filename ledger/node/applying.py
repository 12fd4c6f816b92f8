"""The node driver's apply half: chosen entries to the state machine, answers after them.

A proposal's outcome and a passed read barrier are answered once their slot is
applied here, not just chosen: the state machine may hold entries back (the ledger
holds a credit until its debit is applied, so its applied state is always a
consistent cut), and the accounts held entries wait for are caught up with a read
barrier of their own. Applying can also be paused (an audit reads the state
machine across several turns while it stands still): chosen entries then wait,
in order, and everything answered after them waits with them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from ledger.node.consensus import AccountQuarantined, StateMachine
from ledger.node.counters import DriverCounters
from ledger.node.durability import DurabilityGate
from ledger.node.inbox import Inbox, Turn
from ledger.node.proposals import ProposalQueues
from ledger.node.reads import Read, ReadBarriers
from ledger.paxos import Committed, Outcome, PaxosNode
from ledger.paxos.ready import BarrierDone
from ledger.paxos.records import Write
from ledger.storage.base import AppWrite


class Applying:
    """Mixed into NodeDriver, whose state it shares."""

    _state_machine: StateMachine
    _core: PaxosNode
    _gate: DurabilityGate[Turn]
    _inbox: Inbox
    _proposals: ProposalQueues
    _reads: ReadBarriers
    _wake: asyncio.Event
    counters: DriverCounters
    _stage: Callable[[list[Write] | list[AppWrite]], None]

    def _init_applying(self) -> None:
        # Answers waiting for their slot to be applied here, by account; the reads that
        # catch up on accounts held entries wait for; entries chosen while paused.
        self._parked: dict[str, list[Outcome | BarrierDone]] = {}
        self._fetching: dict[str, asyncio.Future[int]] = {}
        self._pauses = 0
        self._unapplied: list[Committed] = []
        self._reapply_after_pause: list[Callable[[], None]] = []

    def pause_applying(self) -> None:
        """Apply nothing until `resume_applying` (as many times as this was called)."""
        self._pauses += 1

    def resume_applying(self) -> None:
        assert self._pauses > 0, "resumed more often than paused"
        self._pauses -= 1
        if self._pauses:
            return
        unapplied, self._unapplied = self._unapplied, []
        if unapplied:
            self._apply(unapplied)
        for reapply in self._reapply_after_pause:
            reapply()
        self._reapply_after_pause.clear()
        self._answer_applied()
        self._wake.set()

    def _apply_and_answer(self, turn: Turn) -> None:
        """Apply what the turn's Readies committed, then answer outcomes and barriers."""
        committed = [entry for ready in turn.readies for entry in ready.committed]
        if committed:
            if self._pauses:
                self._unapplied.extend(committed)
            else:
                self._apply(committed)
        for ready in turn.readies:
            for outcome in ready.outcomes:
                self._answer_when_applied(outcome)
            for done in ready.barriers:
                self._answer_when_applied(done)
        if committed and not self._pauses:
            self._answer_applied()

    def _apply(self, committed: list[Committed]) -> None:
        # What applying writes is derived from the log, so it may trail it.
        self.counters.applied += len(committed)
        self._stage(self._state_machine.apply(committed))
        self._stage(self._state_machine.flush())
        self._gate.staged()
        self._catch_up_awaited()

    def _answer_when_applied(self, done: Outcome | BarrierDone) -> None:
        """Answer a proposal's outcome or a passed barrier once its slot is applied here."""
        if self._state_machine.applied_slot(done.account) < done.slot:
            reason = self._core.quarantine_reason(done.account)
            if reason is not None:  # it will not be applied here: its callers hear why
                error = AccountQuarantined(reason)
                self._proposals.fail_account(done.account, error)
                self._reads.fail_account(done.account, error)
                return
            self._parked.setdefault(done.account, []).append(done)
        elif isinstance(done, BarrierDone):
            self._reads.passed(done)
        elif self._proposals.finish(done):
            self._wake.set()

    def _answer_applied(self) -> None:
        """Answer what waited for slots that are applied now."""
        if not (self._parked or self._proposals.behind):
            return
        applied_slot = self._state_machine.applied_slot
        for account in list(self._parked):
            if all(applied_slot(account) >= done.slot for done in self._parked[account]):
                for done in self._parked.pop(account):
                    self._answer_when_applied(done)
        for account in list(self._proposals.behind):
            if applied_slot(account) >= self._core.chosen_through(account):
                self._proposals.caught_up(account)
                self._wake.set()

    def _catch_up_awaited(self) -> None:
        """Held entries wait for other accounts' slots: learn those accounts (a read
        barrier makes this node catch up on an account as far as a majority knows)."""
        awaited = self._state_machine.waiting_on()
        for account, slot in awaited.items():
            fetching = self._fetching.get(account)
            if self._core.chosen_through(account) >= slot or (
                    fetching is not None and not fetching.done()):
                continue  # chosen here (it waits its own turn), or being fetched
            future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
            future.add_done_callback(_retrieved)
            self._fetching[account] = future
            self._inbox.reads.append(Read(account, future))
            self._wake.set()
        for account in [a for a, f in self._fetching.items() if f.done() and a not in awaited]:
            del self._fetching[account]


def _retrieved(future: asyncio.Future[int]) -> None:
    if not future.cancelled():
        future.exception()  # a catch-up read that failed is simply made again
