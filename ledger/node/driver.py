"""The node driver: the only code that calls the Paxos core, one turn at a time.

Everything runs on one asyncio loop, so the core is never entered concurrently.
A turn takes everything that arrived since the last one (peer messages, replies,
proposals, cancellations, due timers), feeds it to the core, then carries out
the resulting Readies in the order the core demands:

1. persist: stage every write and sync once (group commit: one fsync per turn);
2. send: answers to peers that called us go back in their calls' replies, the
   rest to the transport, messages to ourselves to the next turn;
3. apply: committed entries go to the state machine, outcomes to proposers.

While a turn syncs, new work queues up and forms the next turn's batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from ledger.node.trace import Tracer
from ledger.paxos import (
    Committed,
    Envelope,
    Outcome,
    PaxosConfig,
    PaxosNode,
    ProposalInProgress,
    Ready,
)
from ledger.paxos.backoff import RandomSource
from ledger.paxos.records import Write
from ledger.storage.base import AppWrite, StorageError, Store

log = logging.getLogger(__name__)

Send = Callable[[int, list[Envelope]], None]

LAZY_FLUSH_MS = 20  # writes nothing waits on are flushed within this long
NEVER = 1 << 62
STORAGE_RETRY_MS = 100  # how often a failing disk is retried when nothing else happens
MAX_COALESCE_YIELDS = 8  # event-loop trips a turn waits for more work to join it


class NoQuorum(Exception):
    """No majority answered before the deadline; the value may or may not be chosen."""


class StorageUnavailable(Exception):
    """The node cannot make writes durable (disk or map full); the message says why."""


class StateMachine(Protocol):
    """What committed entries are applied to, in log order per account."""

    def applied_slot(self, account: str) -> int:
        """The last slot applied to the account (-1: none)."""
        ...

    def apply(self, entries: Sequence[Committed]) -> list[AppWrite]:
        """Apply chosen entries, each account's in log order; return the writes recording them."""
        ...

    def flush(self) -> list[AppWrite]:
        """Writes applying has deferred (staged right after a batch of applies)."""
        ...


class AppliedSlots:
    """The simplest state machine: remembers how far each account's log was applied."""

    TABLES = ("applied",)

    def __init__(self, store: Store) -> None:
        self._store = store

    def applied_slot(self, account: str) -> int:
        raw = self._store.app_get("applied", account.encode())
        return -1 if raw is None else int.from_bytes(raw, "big", signed=True)

    def apply(self, entries: Sequence[Committed]) -> list[AppWrite]:
        last: dict[str, int] = {}
        for committed in entries:
            expected = last.get(committed.account, self.applied_slot(committed.account)) + 1
            assert committed.slot == expected
            last[committed.account] = committed.slot
        return [AppWrite("applied", account.encode(), slot.to_bytes(8, "big", signed=True))
                for account, slot in last.items()]

    def flush(self) -> list[AppWrite]:
        return []


def monotonic_ms() -> int:
    return time.monotonic_ns() // 1_000_000


@dataclass(slots=True, eq=False)
class _Proposal:
    account: str
    value: bytes
    future: asyncio.Future[Outcome | None]
    expected_slot: int | None = None


@dataclass(slots=True, eq=False)
class _Call:
    """A peer's Step call, waiting for the answers its messages cause."""

    source: int
    envelopes: list[Envelope]
    future: asyncio.Future[list[Envelope]]


@dataclass(slots=True, eq=False)
class _Read:
    """A caller waiting for a read barrier on `account`."""

    account: str
    future: asyncio.Future[int]


@dataclass(slots=True)
class _Held:
    """What one turn produced, released once the writes it depends on are durable."""

    readies: list[Ready]
    calls: list[_Call]
    needs_flush: int  # the number of the first flush that covers its writes


@dataclass(slots=True)
class _Inbox:
    calls: list[_Call] = field(default_factory=list)
    messages: list[Envelope] = field(default_factory=list)
    cancels: list[_Proposal] = field(default_factory=list)
    reads: list[_Read] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.calls or self.messages or self.cancels or self.reads)


class NodeDriver:
    """Owns the core, the store and the state machine; serialises all access to them."""

    def __init__(
        self,
        node_index: int,
        config: PaxosConfig,
        store: Store,
        send: Send,
        rng: RandomSource,
        state_machine: StateMachine | None = None,
        clock_ms: Callable[[], int] = monotonic_ms,
    ) -> None:
        self.node_index = node_index
        self.config = config
        self._store = store
        self._send = send
        self._clock_ms = clock_ms
        self._state_machine = state_machine or AppliedSlots(store)
        self._core = PaxosNode(node_index, config, store, rng, clock_ms())
        self._inbox = _Inbox()
        self._waiting: dict[str, deque[_Proposal]] = defaultdict(deque)
        self._active: dict[str, _Proposal] = {}
        self._barriers: dict[tuple[str, int], list[_Read]] = {}
        self._dirty = False  # something is staged that no flush has taken yet
        self._held: deque[_Held] = deque()  # turns whose results wait for a flush
        self._flushing = False  # a background flush is in flight
        self._flushes_started = 0
        self._flushes_done = 0
        self._lazy_flush_at_ms = NEVER
        self._wake = asyncio.Event()
        self.tracer = Tracer()
        self._stopping = False
        self.storage_error: str | None = None
        self.turns = 0
        self.syncs = 0
        self.last_flush_ms = 0
        self.messages = 0  # handled by the core
        self.received: Counter[str] = Counter()  # messages handled, by kind
        self.proposals = 0
        self.applied = 0  # log entries applied since start (not counting startup's re-apply)
        self.extra_counters: Callable[[], dict[str, int]] = dict

    # ------------------------------------------------------------------ inputs

    def deliver(self, source: int, envelopes: list[Envelope]) -> asyncio.Future[list[Envelope]]:
        """Messages from a peer's call; resolves with our answers to it, once durable."""
        future: asyncio.Future[list[Envelope]] = asyncio.get_running_loop().create_future()
        self._inbox.calls.append(_Call(source, envelopes, future))
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
        proposal = _Proposal(account, value, future, expected_slot)
        self._waiting[account].append(proposal)
        self._wake.set()
        try:
            # A timeout cancels the future itself (no task or shield per proposal).
            async with asyncio.timeout(timeout_s):
                return await future
        except TimeoutError:
            self._inbox.cancels.append(proposal)  # a no-op if it finished meanwhile
            self._wake.set()
            raise NoQuorum(
                f"no majority decided slot for account {account!r} within "
                f"{timeout_s:.1f}s; the value may or may not be chosen"
            ) from None

    async def read_barrier(self, account: str, timeout_s: float) -> int:
        """Wait until this node has applied every write decided before the call began.

        Returns the slot through which the account is then applied. Reads
        arriving in one turn share one barrier round. Raises NoQuorum on timeout.
        """
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._inbox.reads.append(_Read(account, future))
        self._wake.set()
        try:
            async with asyncio.timeout(timeout_s):
                return await future
        except TimeoutError:
            raise NoQuorum(
                f"no majority answered a read of account {account!r} within {timeout_s:.1f}s"
            ) from None

    # ----------------------------------------------------------------- queries

    @property
    def core(self) -> PaxosNode:
        return self._core

    def counters(self) -> dict[str, int]:
        """How much work this node did since it started, for operators and benchmarks."""
        return {"turns": self.turns, "syncs": self.syncs, "messages": self.messages,
                "proposals": self.proposals, "applied": self.applied, **self.extra_counters(),
                **{f"received_{kind}": count for kind, count in self.received.items()}}

    def applied_slot(self, account: str) -> int:
        return self._state_machine.applied_slot(account)

    # -------------------------------------------------------------------- loop

    async def run(self) -> None:
        """Turn until `stop`; first apply what was chosen but not applied before a crash."""
        self._recover_unapplied()
        while not self._stopping:
            await self._wait_for_work()
            if self._stopping:
                break
            self._turn()
        self._turn()  # flush what arrived last, and stage the final applies
        self._sync()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def _wait_for_work(self) -> None:
        # Always yield once: servicers and the transport run on this loop too.
        await asyncio.sleep(0)
        failing = self.storage_error is not None
        if self._inbox or self._has_startable_proposal():
            await self._coalesce()
            return
        delay_ms = min(self._core.next_timer_ms(), self._lazy_flush_at_ms) - self._clock_ms()
        if failing:
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
            before = self._backlog()
            await asyncio.sleep(0)
            if self._backlog() == before:
                return

    def _backlog(self) -> int:
        inbox = self._inbox
        return (len(inbox.calls) + len(inbox.messages) + len(inbox.reads)
                + sum(len(queue) for queue in self._waiting.values()))

    def _has_startable_proposal(self) -> bool:
        return any(
            queue and account not in self._active for account, queue in self._waiting.items()
        )

    def _turn(self) -> None:
        self.turns += 1
        now_ms = self._clock_ms()
        inbox, self._inbox = self._inbox, _Inbox()
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
        # Persist, then send: a turn that staged promises or votes (or follows one that
        # is still waiting) is held until a flush covers its writes. The flush runs on
        # the store's writer thread, so this loop keeps serving meanwhile, and whatever
        # is staged while it runs shares the next one (group commit). Chosen values and
        # applied state gate nothing (a majority's votes make a value chosen): a turn
        # with only those is released at once, its writes flushed in the background.
        # The flush that covers everything staged so far: the next one if this turn (or
        # an earlier one) staged writes no flush has taken yet, else the one in flight.
        covering = self._flushes_started + (1 if self._dirty else 0)
        group = _Held(readies, inbox.calls, covering)
        if self._held or any(ready.gates_sends for ready in readies):
            self._held.append(group)
        else:
            self._release(group)
        self._flush_if_needed()
        if self._inbox:
            self._wake.set()

    def _flush_if_needed(self) -> None:
        if self._flushing or not self._dirty or self.storage_error is not None:
            return
        if not self._held and self._clock_ms() < self._lazy_flush_at_ms:
            # Nothing waits on these writes (chosen values, applied state): let them
            # ride with the next flush that something does wait on, or go a bit later.
            if self._lazy_flush_at_ms == NEVER:
                self._lazy_flush_at_ms = self._clock_ms() + LAZY_FLUSH_MS
            return
        self._lazy_flush_at_ms = NEVER
        self._flushing = True
        self._dirty = False
        self._flushes_started += 1
        number = self._flushes_started
        started_ms = self._clock_ms()
        future = asyncio.wrap_future(self._store.flush_async())
        future.add_done_callback(lambda done: self._flushed(done, number, started_ms))

    def _flushed(self, future: asyncio.Future[None], number: int, started_ms: int) -> None:
        self._flushing = False
        error = future.exception()
        if error is not None:
            assert isinstance(error, StorageError), error
            self._dirty = True  # the store keeps the writes staged; they are retried
            self._storage_failed(error)
            self._drop_held()
            return
        self.syncs += 1
        self.last_flush_ms = self._clock_ms() - started_ms
        self._flushes_done = number
        if self.storage_error is not None:
            log.warning("storage is writable again")
            self.storage_error = None
        while self._held and self._held[0].needs_flush <= number:
            self._release(self._held.popleft())
        self._flush_if_needed()
        self._wake.set()

    def _release(self, group: _Held) -> None:
        """Send, then apply, what one turn produced (its writes are durable as needed)."""
        outbound: dict[int, list[Envelope]] = defaultdict(list)
        for ready in group.readies:
            for envelope in ready.messages:
                if envelope.destination == self.node_index:
                    self._inbox.messages.append(envelope)
                    if self.tracer.active:
                        self.tracer.record("sent", self.node_index, envelope.message)
                else:
                    outbound[envelope.destination].append(envelope)
        if self.tracer.active:
            for envelopes in outbound.values():
                for envelope in envelopes:
                    self.tracer.record("sent", envelope.destination, envelope.message)
        for call in group.calls:
            if not call.future.done():
                call.future.set_result(outbound.pop(call.source, []))
        for peer, envelopes in outbound.items():
            self._send(peer, envelopes)

        # Apply: what applying writes is derived from the log, so it may trail it.
        committed = [entry for ready in group.readies for entry in ready.committed]
        if committed:
            self.applied += len(committed)
            self._stage(self._state_machine.apply(committed))
            self._stage(self._state_machine.flush())
            self._dirty = True
        for ready in group.readies:
            for outcome in ready.outcomes:
                self._finish(outcome)
            for done in ready.barriers:
                for read in self._barriers.pop((done.account, done.nonce), []):
                    if not read.future.done():
                        read.future.set_result(done.slot)

    def _run_core(self, inbox: _Inbox, now_ms: int) -> list[Ready]:
        """Feed the turn's work to the core, staging each Ready's writes at once.

        Staging right away matters: the core reads its durable state back (chosen
        values for a Promise, say) while it handles the next message of the turn.
        """
        core = self._core
        readies: list[Ready] = []

        def take(ready: Ready) -> None:
            readies.append(ready)
            if ready.writes:
                self._dirty = True
                self._store.stage(ready.writes)

        if self.tracer.active:
            for envelope in [e for call in inbox.calls for e in call.envelopes] + inbox.messages:
                self.tracer.record("received", envelope.source, envelope.message)
        received = self.received
        for call in inbox.calls:
            self.messages += len(call.envelopes)
            for envelope in call.envelopes:
                received[type(envelope.message).__name__] += 1
                take(core.handle(envelope, now_ms))
        self.messages += len(inbox.messages)
        for envelope in inbox.messages:
            received[type(envelope.message).__name__] += 1
            take(core.handle(envelope, now_ms))
        for proposal in inbox.cancels:
            if self._active.get(proposal.account) is proposal:
                del self._active[proposal.account]
                take(core.cancel(proposal.account, now_ms))
            elif proposal in self._waiting[proposal.account]:
                self._waiting[proposal.account].remove(proposal)
        self._start_proposals(now_ms, take)
        self._start_barriers(inbox.reads, now_ms, take)
        take(core.tick(now_ms))
        return readies

    def _start_proposals(self, now_ms: int, take: Callable[[Ready], None]) -> None:
        for account in [a for a, queue in self._waiting.items() if not queue]:
            del self._waiting[account]  # keep this scan as short as the accounts in play
        for account, queue in self._waiting.items():
            while queue and queue[0].future.done():
                queue.popleft()  # its caller gave up before it started
            if not queue or account in self._active:
                continue
            proposal = queue[0]
            expected = proposal.expected_slot
            if expected is not None and self._core.chosen_through(account) + 1 != expected:
                queue.popleft()
                proposal.future.set_result(None)
                continue
            if self.tracer.active:
                self._trace_proposal(account)
            try:
                ready = self._core.propose(account, proposal.value, now_ms)
            except ProposalInProgress:
                continue  # a cancelled proposal of ours is still settling; try next turn
            queue.popleft()
            self._active[account] = proposal
            self.proposals += 1
            take(ready)

    def _start_barriers(
        self, reads: list[_Read], now_ms: int, take: Callable[[Ready], None]
    ) -> None:
        """One barrier round per account for all reads that arrived since the last turn."""
        by_account: dict[str, list[_Read]] = defaultdict(list)
        for read in reads:
            by_account[read.account].append(read)
        for account, waiting in by_account.items():
            nonce, ready = self._core.read_barrier(account, now_ms)
            self._barriers[(account, nonce)] = waiting
            take(ready)
        # Rounds whose readers all gave up are dropped from the core.
        for key, waiting in list(self._barriers.items()):
            if all(read.future.done() for read in waiting):
                del self._barriers[key]
                self._core.cancel_barrier(*key)

    def _trace_proposal(self, account: str) -> None:
        slot = self._core.chosen_through(account) + 1
        leader = self._core.leadership(account)
        if self._core.config.fast_path and leader is not None and (
            leader.next_slot == slot
        ):
            self.tracer.note(account, (
                f"proposing at slot {slot} on the fast path: a majority promised "
                f"ballot {leader.ballot} for every slot >= {leader.since_slot}, so "
                "Prepare/Promise are skipped"))
        else:
            self.tracer.note(account, (
                f"proposing at slot {slot}: this node holds no range promise on the "
                "account, so Phase 1 (Prepare/Promise) runs first"))

    def _finish(self, outcome: Outcome) -> None:
        proposal = self._active.get(outcome.account)
        if proposal is None or proposal.value != outcome.proposed:
            return
        del self._active[outcome.account]
        if not proposal.future.done():
            proposal.future.set_result(outcome)
        if self._waiting.get(outcome.account):
            self._wake.set()

    def _stage(self, writes: list[Write] | list[AppWrite]) -> bool:
        """Stage writes; a store that cannot take them keeps them staged for the next sync."""
        try:
            self._store.stage(writes)
        except StorageError as error:
            self._storage_failed(error)
            return False
        return True

    def _storage_failed(self, error: StorageError) -> None:
        if self.storage_error is None:
            log.error("cannot persist writes, refusing to answer until it can: %s", error)
        self.storage_error = str(error)

    def _sync(self) -> bool:
        """Make staged writes durable now (startup, shutdown, recovery from a full disk)."""
        try:
            self._store.sync()
        except StorageError as error:
            self._storage_failed(error)
            return False
        self.syncs += 1
        self._dirty = False
        if self.storage_error is not None:
            log.warning("storage is writable again")
            self.storage_error = None
        return True

    def _drop_held(self) -> None:
        """Nothing of an unsynced turn may leave; peers and proposers will retry."""
        held, self._held = self._held, deque()
        self._fail_calls([call for group in held for call in group.calls])

    def _fail_calls(self, calls: list[_Call]) -> None:
        for call in calls:
            if not call.future.done():
                call.future.set_result([])
        failure = StorageUnavailable(self.storage_error or "storage unavailable")
        for proposal in list(self._active.values()):
            if not proposal.future.done():
                proposal.future.set_exception(failure)

    def _recover_unapplied(self) -> None:
        """Apply chosen entries a crash left unapplied (apply writes trail the log)."""
        after = ""
        while True:
            summaries = self._store.account_summaries(after, 1_000)
            for summary in summaries:
                slot = self._state_machine.applied_slot(summary.account) + 1
                while slot <= summary.chosen_through:
                    values = self._store.chosen_values(summary.account, slot, 1_000)
                    assert values, "the chosen prefix is stored without gaps"
                    self._store.stage(self._state_machine.apply([
                        Committed(summary.account, slot + offset, value)
                        for offset, value in enumerate(values)]))
                    slot += len(values)
                    self._dirty = True
            self._store.stage(self._state_machine.flush())
            if len(summaries) < 1_000:
                break
            after = summaries[-1].account
        self._sync()
