"""The node driver: the only code that calls the Paxos core, one turn at a time.

Everything runs on one asyncio loop, so the core is never entered concurrently.
A turn takes everything that arrived since the last one (peer messages, replies,
proposals, cancellations, reads, due timers), feeds it to the core, then carries
out the resulting Readies in the order the core demands:

1. persist: stage every write; a background flush makes it durable (group commit:
   one fsync for everything staged meanwhile);
2. send: once the writes they vouch for are durable (`DurabilityGate`), answers to
   peers that called us go back in their calls' replies, the rest to the
   transport, messages to ourselves to the next turn;
3. apply: chosen entries go to the state machine, outcomes to proposers, passed
   read barriers to readers.

While a flush runs, new work queues up and forms the next turns.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict
from collections.abc import Callable

from ledger.node.applying import Applying
from ledger.node.consensus import (
    AccountQuarantined,
    NoQuorum,
    StateMachine,
    StorageUnavailable,
)
from ledger.node.counters import DriverCounters, Histogram
from ledger.node.durability import DurabilityGate
from ledger.node.flushing import Flushing
from ledger.node.inbox import Call, Inbox, Turn
from ledger.node.proposals import Proposal, ProposalQueues
from ledger.node.reads import Read, ReadBarriers
from ledger.node.reapply import reapply_account, reapply_unapplied
from ledger.node.repair import FetchChosen, Repairs
from ledger.node.trace import Tracer
from ledger.paxos import Alarm, Envelope, Outcome, PaxosConfig, PaxosNode, Ready
from ledger.paxos.backoff import RandomSource
from ledger.storage.base import ChosenRepair, Corruption, StorageError, Store

log = logging.getLogger(__name__)

Send = Callable[[int, list[Envelope]], None]

LAZY_FLUSH_MS = 20  # writes nothing waits on are flushed within this long
STORAGE_RETRY_MS = 100  # how often a failing disk is retried when nothing else happens
MAX_COALESCE_YIELDS = 8  # event-loop trips a turn waits for more work to join it


class NodeFailed(Exception):
    """The node stopped on a failure it cannot handle; the message says what and what to do."""


def monotonic_ms() -> int:
    return time.monotonic_ns() // 1_000_000


class NodeDriver(Flushing, Applying):
    """Owns the core, the store and the state machine; serialises all access to them.

    Implements `ledger.node.consensus.Consensus` for the layer above.
    """

    def __init__(
        self, node_index: int, config: PaxosConfig, store: Store, send: Send, rng: RandomSource,
        state_machine: StateMachine, clock_ms: Callable[[], int] = monotonic_ms,
    ) -> None:
        self.node_index = node_index
        self.config = config
        self._store = store
        self._send = send
        self._clock_ms = clock_ms
        self._state_machine = state_machine
        self._started_ms = clock_ms()
        self._core = PaxosNode(node_index, config, store, rng, self._started_ms)
        self._inbox = Inbox()
        self._proposals = ProposalQueues()
        self._reads = ReadBarriers()
        self._gate: DurabilityGate[Turn] = DurabilityGate(LAZY_FLUSH_MS)
        self._wake = asyncio.Event()
        self._stopping = False
        self._fatal: BaseException | None = None  # a failure nothing here can handle
        self.tracer = Tracer()
        # Set by the server: how a damaged chosen value is fetched from a peer, and how
        # the node is sent through `ledger recover` (a damaged promise or vote).
        self.fetch_chosen: FetchChosen | None = None
        self.needs_recovery: Callable[[str], None] = lambda reason: None
        self._repairs = Repairs(self)
        self.counters = DriverCounters()
        self.storage_error: str | None = None
        self._writes_staged = 0
        self._init_applying()

    # ------------------------------------------------------------------ inputs

    def deliver(self, source: int, envelopes: list[Envelope]) -> asyncio.Future[list[Envelope]]:
        """Messages from a peer's call; resolves with our answers to it, once durable."""
        future: asyncio.Future[list[Envelope]] = asyncio.get_running_loop().create_future()
        self._inbox.calls.append(Call(source, envelopes, future))
        self._wake.set()
        return future

    def receive(self, envelopes: list[Envelope]) -> None:
        """Messages that need no answer in a reply (answers to our own calls)."""
        self._inbox.messages.extend(envelopes)
        self._wake.set()

    async def propose(
        self, account: str, value: bytes, timeout_s: float, expected_slot: int | None = None
    ) -> Outcome | None:
        """Propose `value` at the account's next undecided slot and wait for the outcome.

        Proposals on one account run one at a time, in arrival order. With
        `expected_slot`, the proposal is made only if that is the next undecided
        slot when its turn comes; otherwise it returns None at once (the prefix
        the caller checked its request against has moved). Raises NoQuorum if no
        decision came within `timeout_s`: the value may still be chosen later.
        """
        if self.storage_error is not None:
            raise StorageUnavailable(self.storage_error)
        future: asyncio.Future[Outcome | None] = asyncio.get_running_loop().create_future()
        proposal = Proposal(account, value, future, expected_slot)
        self._proposals.add(proposal)
        self._wake.set()
        try:
            # A timeout cancels the future itself (no task or shield per proposal).
            async with asyncio.timeout(timeout_s):
                return await future
        except TimeoutError:
            self._inbox.cancels.append(proposal)  # a no-op if it finished meanwhile
            self._wake.set()
            raise NoQuorum(
                f"no majority decided a slot for account {account!r} within "
                f"{timeout_s:.1f}s; the value may or may not be chosen"
            ) from None

    async def read_barrier(self, account: str, timeout_s: float) -> int:
        """Wait until this node has applied every write decided before the call began.

        Returns the slot through which the account is then applied. Reads arriving
        in one turn share one barrier round. Raises NoQuorum on timeout.
        """
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._inbox.reads.append(Read(account, future))
        self._wake.set()
        try:
            async with asyncio.timeout(timeout_s):
                return await future
        except TimeoutError:
            raise NoQuorum(f"no majority answered a read of account {account!r} within "
                           f"{timeout_s:.1f}s") from None

    # ----------------------------------------------------------------- queries

    def leader_hint(self, account: str) -> int | None:
        """Another node that leads `account` as far as this node knows; None for us or nobody."""
        leader = self._core.leader_hint(account)
        return None if leader == self.node_index else leader

    def applied_slot(self, account: str) -> int:
        return self._state_machine.applied_slot(account)

    def highest_slot(self, account: str) -> int:
        """The highest slot of `account` this node has voted on or knows to be chosen."""
        return self._core.highest_slot(account)

    def quarantine_reason(self, account: str) -> str | None:
        return self._core.quarantine_reason(account)

    def report_damage(self, error: Corruption) -> None:
        """A read outside the core (Admin.Log) found a damaged record: as if the core had."""
        self._unreadable(error, self._clock_ms(), lambda ready: ready and [
            self._raise_alarm(alarm) for alarm in ready.alarms])

    def put_back(self, repair: ChosenRepair) -> None:
        """Write a repaired chosen value durably (at once: repairs are rare); act on it again."""
        self._store.stage([repair])
        self._store.sync()  # committed before it is read back, by the applies below
        self.counters.repaired_values += 1
        if self._pauses:  # the state machine must stand still until then
            self._reapply_after_pause.append(lambda: self._reapply_repaired(repair.account))
        else:
            self._reapply_repaired(repair.account)

    def _reapply_repaired(self, account: str) -> None:
        try:
            reapply_account(self._store, self._state_machine, account,
                            self._store.account_summary(account).chosen_through)
        except Corruption as error:  # another damaged record: its own repair, or recovery
            self.report_damage(error)
            return
        self._store.stage(self._state_machine.flush())
        self._gate.staged()
        self._core.release_repaired(account)
        self._answer_applied()
        self._catch_up_awaited()
        self.counters.unreadable_accounts = self._core.unreadable_count()
        self._wake.set()

    def forget_peer(self, peer: int) -> None:
        """Node `peer` rejoined: what its former life sent and was not handled yet is dropped
        (its peer book refuses the rest); the core forgets what it counted. Between turns."""
        self._inbox.drop_from(peer)
        self._core.forget_peer(peer)

    def counter_values(self) -> dict[str, int]:
        """Every counter and gauge the node keeps, by name (see `ledger.server.metrics`)."""
        core = self._core
        in_memory, memory_bound = core.in_memory()
        now_ms = self._clock_ms()
        peers = [node for node in range(core.config.cluster_size) if node != core.node_index]
        lag, heard_ms = core.peer_lag(), core.heard_ms()
        return {**self.counters.as_dict(), **core.stats.as_dict(),
                "recovering_accounts": core.recovering_accounts(),
                **{f"peer_lag:{node}": lag[node] for node in peers},
                # (Never heard since this start: as long as the node has run, at most.)
                **{f"peer_silent_ms:{node}": min(now_ms - heard_ms[node],
                                                 now_ms - self._started_ms) for node in peers},
                "bound:paxos_accounts_in_memory:used": in_memory,
                "bound:paxos_accounts_in_memory:limit": memory_bound}

    def histograms(self) -> dict[str, Histogram]:
        """The node's histograms, copied (a scrape reads them on another thread)."""
        counters = self.counters
        return {name: Histogram(h.bounds, list(h.counts), h.total) for name, h in
                (("flush_seconds", counters.flush_seconds),
                 ("flush_writes", counters.flush_writes))}

    # -------------------------------------------------------------------- loop

    async def run(self) -> None:
        """Turn until `stop`; first apply what was chosen but not applied before a crash.

        A failure nothing here can handle (a bug, a store that failed unforeseen) stops
        the node: nothing more is answered, and NodeFailed says why.
        """
        try:
            await self._run()
        except asyncio.CancelledError:
            raise
        except Exception as error:
            self._fatal = self._fatal or error
        if self._fatal is not None:
            raise NodeFailed(
                f"{self._fatal!r}; nothing more was answered, and nothing it answered is "
                "lost: restart the node from its data directory") from self._fatal

    async def _run(self) -> None:
        reapplied, damaged = reapply_unapplied(self._store, self._state_machine)
        if reapplied:
            self._gate.staged()
        self._catch_up_awaited()
        for error in damaged:  # no crash loop: the rest of the node serves
            self.report_damage(error)
        self._sync()
        while not self._stopping:
            await self._wait_for_work()
            if self._stopping:
                break
            self._turn()
        if self._fatal is not None:
            return  # nothing more may leave or be written
        self._turn()  # flush what arrived last, and stage the final applies
        self._sync()

    def stop(self) -> None:
        self._repairs.cancel_all()
        self._stopping = True
        self._wake.set()

    async def _wait_for_work(self) -> None:
        # Always yield once: servicers and the transport run on this loop too.
        await asyncio.sleep(0)
        if self._inbox or self._proposals.startable():
            await self._coalesce()
            return
        delay_ms = min(self._core.next_timer_ms(), self._gate.lazy_flush_at_ms) - self._clock_ms()
        if self.storage_error is not None:
            delay_ms = min(delay_ms, STORAGE_RETRY_MS)
        if delay_ms <= 0:
            return
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            # asyncio.timeout, not wait_for: no task is made for every wait.
            async with asyncio.timeout(delay_ms / 1000):
                await self._wake.wait()

    async def _coalesce(self) -> None:
        """Let work that is already on its way join this turn, so one sync serves it all.

        Calls that arrived while the last turn synced need a few trips around the
        event loop before they reach the inbox; a turn started at the first
        message would sync for it alone.
        """
        for _ in range(MAX_COALESCE_YIELDS):
            before = len(self._inbox) + self._proposals.waiting()
            await asyncio.sleep(0)
            if len(self._inbox) + self._proposals.waiting() == before:
                return

    def _turn(self) -> None:
        self.counters.turns += 1
        now_ms = self._clock_ms()
        inbox, self._inbox = self._inbox, Inbox()
        if self.storage_error is not None and not self._sync():
            # While the disk refuses writes the core is not fed: what it would answer
            # could not be made durable. Peers and proposers retry on their own.
            self._fail_calls(inbox.calls)
            return
        try:
            readies = self._run_core(inbox, now_ms)
        except StorageError as error:
            self._storage_failed(error)
            self._fail_calls(inbox.calls)
            return
        # Persist, then send: a turn that staged promises, votes or rounds (or follows
        # one still held) waits for the flush that covers its writes. The flush runs on
        # the store's writer thread, so this loop keeps serving meanwhile. Chosen values
        # and applied state gate nothing (a majority's votes make a value chosen).
        turn = Turn(readies, inbox.calls)
        # (Held turns keep order whatever this one staged: no need to look at its writes.)
        gates_sends = self._gate.holding or any(ready.gates_sends for ready in readies)
        if self._gate.admit(turn, gates_sends):
            self._release(turn)
        self._flush_if_needed()
        if self._inbox:
            self._wake.set()

    def _run_core(self, inbox: Inbox, now_ms: int) -> list[Ready]:
        """Feed the turn's work to the core, staging each Ready's writes at once.

        Staging right away matters: the core reads its durable state back (chosen
        values for a Promise, say) while it handles the next message of the turn.
        """
        core = self._core
        readies: list[Ready] = []

        def take(ready: Ready | None) -> None:
            if ready is None:
                return
            readies.append(ready)
            if ready.writes:
                self._gate.staged()
                self._writes_staged += len(ready.writes)
                self._store.stage(ready.writes)
            for alarm in ready.alarms:
                self._raise_alarm(alarm)

        if self.tracer.active:
            for envelope in [e for call in inbox.calls for e in call.envelopes] + inbox.messages:
                self.tracer.record("received", envelope.source, envelope.message)
        def handle(envelope: Envelope) -> None:
            received[type(envelope.message).__name__] += 1
            try:
                take(core.handle(envelope, now_ms))
            except Corruption as error:
                self._unreadable(error, now_ms, take)

        counters = self.counters
        received = counters.received
        for call in inbox.calls:
            counters.messages += len(call.envelopes)
            for envelope in call.envelopes:
                handle(envelope)
        counters.messages += len(inbox.messages)
        for envelope in inbox.messages:
            handle(envelope)
        for proposal in inbox.cancels:
            take(self._proposals.cancel(proposal, core, now_ms))
        try:
            before = self._proposals.started
            self._proposals.start(core, now_ms, take, self._trace_proposal,
                                 self._state_machine.applied_slot)
            counters.proposals += self._proposals.started - before
            self._reads.start(inbox.reads, core, now_ms, take)
            take(core.tick(now_ms))
        except Corruption as error:  # the rest of the work comes again next turn
            self._unreadable(error, now_ms, take)
            self._wake.set()
        return readies

    def _unreadable(self, error: Corruption, now_ms: int,
                    take: Callable[[Ready | None], None]) -> None:
        """Damage quarantines its account (a node-wide record stops the node instead)."""
        if error.account is None:
            self._fail(error)
            return
        take(self._core.quarantine_unreadable(error.account, str(error), now_ms))
        self.counters.unreadable_accounts = self._core.unreadable_count()
        if error.slot is not None and self.fetch_chosen is not None:
            self._repairs.start(error.account, error.slot)
        elif error.slot is None:  # a promise or vote: only a recovery makes its loss safe
            self.needs_recovery(str(error))

    def _release(self, turn: Turn) -> None:
        """Send, then apply, what one turn produced (its writes are durable as needed)."""
        outbound: dict[int, list[Envelope]] = defaultdict(list)
        tracing = self.tracer.active
        for ready in turn.readies:
            for envelope in ready.messages:
                if envelope.destination == self.node_index:
                    self._inbox.messages.append(envelope)
                    if tracing:
                        self.tracer.record("sent", self.node_index, envelope.message)
                else:
                    outbound[envelope.destination].append(envelope)
        if tracing:
            for envelopes in outbound.values():
                for envelope in envelopes:
                    self.tracer.record("sent", envelope.destination, envelope.message)
        for call in turn.calls:
            if not call.future.done():
                call.future.set_result(outbound.pop(call.source, []))
        for peer, envelopes in outbound.items():
            self._send(peer, envelopes)

        self._apply_and_answer(turn)

    def _raise_alarm(self, alarm: Alarm) -> None:
        """A correct cluster never does what the alarm says: tell the operator, and fail
        every caller waiting on the account (its other replicas may still serve it)."""
        log.error("ALARM: account %r is quarantined on this node: %s", alarm.account,
                  alarm.reason)
        self.counters.alarms += 1
        error = AccountQuarantined(alarm.reason)
        self._parked.pop(alarm.account, None)  # their callers fail just below
        self._proposals.fail_account(alarm.account, error)
        self._reads.fail_account(alarm.account, error)

    def _fail(self, error: BaseException) -> None:
        """Stop the node on a failure nothing here can handle; nothing more leaves."""
        if self._fatal is None:
            log.critical("stopping the node: %r", error, exc_info=error)
            self._fatal = error
        self.stop()

    def _trace_proposal(self, account: str) -> None:
        if self.tracer.active:
            leader = self._core.leadership(account) if self.config.fast_path else None
            self.tracer.note_proposal(account, self._core.chosen_through(account) + 1, leader)
