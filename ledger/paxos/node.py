"""One node's Paxos state for every account: acceptor, proposer and learner at once.

The node is sans-I/O. Each call (`propose`, `handle`, `tick`, `cancel`) takes the
current time and returns a `Ready`: writes to make durable, then messages to
send, then committed entries to apply. It reads durable state through a
`DurableView` and keeps in memory only what is undecided: per account its
promise, its votes above the chosen prefix, values learned beyond a gap, and
the proposal in flight. Decided slots live in storage.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field

from ledger.paxos import acceptor
from ledger.paxos.acceptor import AcceptorState
from ledger.paxos.backoff import RandomSource, backoff_ms
from ledger.paxos.ballot import Ballot
from ledger.paxos.config import PaxosConfig
from ledger.paxos.messages import (
    Accept,
    Accepted,
    AcceptedEntry,
    CatchUpReply,
    CatchUpRequest,
    Envelope,
    Learn,
    Message,
    Nack,
    Prepare,
    Promise,
    TailQuery,
    TailReport,
    TailsReply,
    TailsRequest,
)
from ledger.paxos.proposer import Phase, Proposer
from ledger.paxos.ready import BarrierDone, Committed, Outcome, Ready, ReadyBuilder
from ledger.paxos.records import ChosenWrite, DurableView, RoundWrite


class ProposalInProgress(Exception):
    """The account already has a proposal of this node in flight (no pipelining)."""


@dataclass(slots=True)
class Leadership:
    """A majority promised `ballot` for every slot >= `next_slot`.

    While it holds, proposals at `next_slot` skip Phase 1 (Multi-Paxos' fast
    path), adopting `later_votes` reported by the promises where there are any.
    """

    ballot: Ballot
    next_slot: int
    later_votes: dict[int, AcceptedEntry]
    since_slot: int  # the Prepare that won the promise named this slot


@dataclass(slots=True)
class Barrier:
    """One read-barrier round: which slots must be settled before a read may answer.

    `target` is the highest slot a majority reports a chosen value or a vote at;
    every write decided before the round began is at or below it.
    """

    nonce: int
    deadline_ms: int  # resend queries, or settle what is still undecided
    reports: dict[int, TailReport] = field(default_factory=dict)
    target: int | None = None
    prepare_seq: int = 0  # prepares begun before the target was known prove nothing


@dataclass(slots=True)
class AccountState:
    """Everything the node holds in memory for one account."""

    acceptor: AcceptorState
    chosen_through: int  # end of the contiguous chosen prefix (-1: none)
    known_tail: int  # highest slot this node knows to be chosen somewhere
    last_activity_ms: int  # last Prepare/Accept/Learn from another node, or own proposal
    max_seen_round: int = 0  # highest round seen in this incarnation's messages
    learned: dict[int, bytes] = field(default_factory=dict)  # chosen beyond a gap
    proposer: Proposer | None = None
    leader: Leadership | None = None
    catch_up_at_ms: int | None = None  # next catch-up request, while behind
    catch_up_source: int | None = None  # a peer known to be ahead
    recovery_at_ms: int | None = None  # when to settle undecided slots ourselves
    timer_ms: int | None = None  # earliest timer queued for this account
    barriers: dict[int, Barrier] = field(default_factory=dict)

    def unsettled(self) -> bool:
        """Does this node hold votes or know of slots it has not seen decided?"""
        return bool(self.acceptor.votes) or bool(self.learned) or (
            self.known_tail > self.chosen_through
        )


#: Slots an account must trail a peer's by for anti-entropy to page on at once.
CATCH_UP_PAGING_GAP = 16


class PaxosNode:
    """The sans-I/O Paxos state machine of one node, for all accounts."""

    #: The proposer implementation (tests plant broken variants here).
    proposer_class: type[Proposer] = Proposer

    def __init__(
        self,
        node_index: int,
        config: PaxosConfig,
        store: DurableView,
        rng: RandomSource,
        now_ms: int,
    ) -> None:
        assert 0 <= node_index < config.cluster_size
        self.node_index = node_index
        self.config = config
        self._store = store
        self._rng = rng
        self._round = self._restored_round()
        self._reserved_round = self._round
        self._accounts: dict[str, AccountState] = {}
        self._timers: list[tuple[int, int, str]] = []
        self._timer_seq = 0
        # Ask a peer what we missed right away: a node that was down is probably behind.
        self._next_anti_entropy_ms = now_ms
        # When each peer was last heard from: a follower does not take over an account
        # whose proposer is still talking to it (a busy leader's Learns come late).
        self._heard_ms = [-(1 << 62)] * config.cluster_size
        self._tails_cursor = ""
        # Read barrier nonces start at a random point of a 61-bit space: a restarted
        # node must not take a TailReport answering its previous life's barrier (same
        # nonce, older state) as an answer to a new one.
        self._next_nonce = 1 + (int(rng.random() * (1 << 53)) << 8)
        self._prepare_seq = 0
        for account in store.accounts_with_votes():
            state = self._state(account, now_ms)
            self._schedule_recovery(account, state, now_ms)

    # ----------------------------------------------------------------- queries

    @property
    def quorum(self) -> int:
        return self.config.quorum

    def chosen_through(self, account: str) -> int:
        """End of the chosen prefix this node knows for `account` (-1: nothing)."""
        state = self._accounts.get(account)
        if state is not None:
            return state.chosen_through
        return self._store.account_record(account).chosen_through

    def is_proposing(self, account: str) -> bool:
        """True while a proposal of this node's own is in flight on `account`."""
        state = self._accounts.get(account)
        return state is not None and state.proposer is not None and (
            state.proposer.value is not None
        )

    def is_leader(self, account: str) -> bool:
        """True while a range promise lets this node skip Phase 1 on `account`."""
        state = self._accounts.get(account)
        return state is not None and state.leader is not None

    def leader_hint(self, account: str) -> int | None:
        """The node that most recently won (or sought) this account's range promise here.

        This node when it holds the promise; another node when our acceptor promised
        that node's ballot last; None when nobody has prepared the account yet.
        """
        state = self._accounts.get(account)
        if state is None:
            return None
        if state.leader is not None:
            return self.node_index
        promised = state.acceptor.promised
        return None if promised.node_index < 0 else promised.node_index

    def leadership(self, account: str) -> Leadership | None:
        """The range promise this node holds on `account`, if any (read-only use)."""
        state = self._accounts.get(account)
        return None if state is None else state.leader

    def next_timer_ms(self) -> int:
        """The earliest time `tick` has work to do."""
        if self._timers:
            return min(self._timers[0][0], self._next_anti_entropy_ms)
        return self._next_anti_entropy_ms

    # ------------------------------------------------------------- operations

    def propose(self, account: str, value: bytes, now_ms: int) -> Ready:
        """Propose `value` at the account's next undecided slot.

        The proposal ends with an `Outcome` naming the value chosen there (ours or
        another that had to be adopted). Raises ProposalInProgress if one of ours
        is still in flight on this account.
        """
        out = ReadyBuilder()
        state = self._state(account, now_ms)
        state.last_activity_ms = now_ms
        current = state.proposer
        if current is not None:
            if current.value is not None:
                raise ProposalInProgress(account)
            current.value = value  # a slot being settled now carries our value too
            return out.build()
        slot = state.chosen_through + 1
        proposer = self.proposer_class(account, slot, value)
        state.proposer = proposer
        leader = state.leader
        if self.config.fast_path and leader is not None and leader.next_slot == slot:
            vote = leader.later_votes.pop(slot, None)
            proposal = vote.value if vote is not None else value
            accept = proposer.begin_accept(leader.ballot, proposal, now_ms, self.config.resend_ms)
            self._broadcast(accept, out)
        else:
            self._begin_prepare(state, proposer, now_ms, out)
        self._after_event(account, state, now_ms, out)
        return out.build()

    def cancel(self, account: str, now_ms: int) -> Ready:
        """Stop waiting for our proposal on `account`; no Outcome will be reported.

        The slot keeps being driven to a decision (our value may still be
        chosen), so a later `propose` on the account joins it.
        """
        out = ReadyBuilder()
        state = self._accounts.get(account)
        if state is not None and state.proposer is not None:
            state.proposer.value = None
            self._after_event(account, state, now_ms, out)
        return out.build()

    def read_barrier(self, account: str, now_ms: int) -> tuple[int, Ready]:
        """Begin a read barrier on `account`; a `BarrierDone` with the returned nonce follows.

        It asks every node how far its chosen prefix and votes reach; once a
        majority answered, it catches up and settles every slot up to the
        highest of those, so a read served after it reflects every write decided
        before it began (linearizable reads).
        """
        out = ReadyBuilder()
        state = self._state(account, now_ms)
        nonce = self._next_nonce
        self._next_nonce += 1
        state.barriers[nonce] = Barrier(nonce, now_ms + self.config.resend_ms)
        self._broadcast(TailQuery(account, nonce), out)
        self._after_event(account, state, now_ms, out)
        return nonce, out.build()

    def cancel_barrier(self, account: str, nonce: int) -> None:
        state = self._accounts.get(account)
        if state is not None:
            state.barriers.pop(nonce, None)

    def handle(self, envelope: Envelope, now_ms: int) -> Ready:
        """Process one message addressed to this node."""
        assert envelope.destination == self.node_index
        out = ReadyBuilder()
        message = envelope.message
        source = envelope.source
        self._heard_ms[source] = now_ms
        if isinstance(message, TailsRequest):
            self._on_tails_request(source, message, out)
        elif isinstance(message, TailsReply):
            self._on_tails_reply(source, message, now_ms, out)
        else:
            self._on_account_message(source, message, now_ms, out)
        return out.build()

    def tick(self, now_ms: int) -> Ready:
        """Fire due timers: resends, retries after backoff, catch-up, recovery, anti-entropy."""
        out = ReadyBuilder()
        while self._timers and self._timers[0][0] <= now_ms:
            due_ms, _, account = heapq.heappop(self._timers)
            state = self._accounts.get(account)
            if state is None:
                continue
            if state.timer_ms == due_ms:
                state.timer_ms = None
            self._on_timer(account, state, now_ms, out)
        if now_ms >= self._next_anti_entropy_ms:
            self._next_anti_entropy_ms = now_ms + self.config.anti_entropy_ms // 2 + (
                self._jitter_ms(self.config.anti_entropy_ms)
            )
            if self.config.cluster_size > 1:
                request = TailsRequest(self._tails_cursor, self.config.tails_batch)
                out.messages.append(Envelope(self.node_index, self._random_peer(), request))
        return out.build()

    # ----------------------------------------------------- message dispatching

    def _on_account_message(
        self, source: int, message: Message, now_ms: int, out: ReadyBuilder
    ) -> None:
        assert not isinstance(message, (TailsRequest, TailsReply))
        account = message.account
        state = self._state(account, now_ms)
        if isinstance(message, Prepare):
            self._on_prepare(source, account, state, message, now_ms, out)
        elif isinstance(message, Accept):
            self._on_accept(source, account, state, message, now_ms, out)
        elif isinstance(message, Promise):
            self._on_promise(source, account, state, message, now_ms, out)
        elif isinstance(message, Accepted):
            self._on_accepted(account, state, source, message, out)
        elif isinstance(message, Nack):
            self._on_nack(source, state, message, now_ms)
        elif isinstance(message, Learn):
            if source != self.node_index:
                state.last_activity_ms = now_ms
            self._learn(account, state, message.slot, message.value, out)
        elif isinstance(message, CatchUpRequest):
            self._on_catch_up_request(source, state, message, out)
        elif isinstance(message, TailQuery):
            self._on_tail_query(source, state, message, out)
        elif isinstance(message, TailReport):
            self._on_tail_report(source, state, message, now_ms)
        else:
            assert isinstance(message, CatchUpReply)
            self._on_catch_up_reply(source, account, state, message, now_ms, out)
        self._after_event(account, state, now_ms, out)

    # --------------------------------------------------------------- acceptor

    def _on_prepare(
        self, source: int, account: str, state: AccountState, prepare: Prepare,
        now_ms: int, out: ReadyBuilder,
    ) -> None:
        if source != self.node_index:
            state.last_activity_ms = now_ms
        state.max_seen_round = max(state.max_seen_round, prepare.ballot.round)
        reply, writes = acceptor.on_prepare(
            state.acceptor, prepare, state.chosen_through, self._chosen_reader(account),
            self.config.promise_chosen_limit,
        )
        if state.leader is not None and prepare.ballot > state.leader.ballot:
            state.leader = None  # someone else is taking over the account
        out.writes.extend(writes)
        out.messages.append(Envelope(self.node_index, source, reply))

    def _on_accept(
        self, source: int, account: str, state: AccountState, accept: Accept,
        now_ms: int, out: ReadyBuilder,
    ) -> None:
        if source != self.node_index:
            state.last_activity_ms = now_ms
        state.max_seen_round = max(state.max_seen_round, accept.ballot.round)
        # A proposer proposes at p only once 0..p-1 are chosen.
        self._note_tail(state, accept.slot - 1, source)
        reply, writes = acceptor.on_accept(
            state.acceptor, accept, state.chosen_through, self._chosen_reader(account)
        )
        if state.leader is not None and accept.ballot > state.leader.ballot:
            state.leader = None
        out.writes.extend(writes)
        out.messages.append(Envelope(self.node_index, source, reply))

    def _on_catch_up_request(
        self, source: int, state: AccountState, request: CatchUpRequest, out: ReadyBuilder
    ) -> None:
        values: tuple[bytes, ...] = ()
        if request.from_slot <= state.chosen_through:
            limit = min(request.limit, self.config.catch_up_batch,
                        state.chosen_through - request.from_slot + 1)
            values = tuple(self._store.chosen_values(request.account, request.from_slot, limit))
        reply = CatchUpReply(request.account, request.from_slot, values, state.chosen_through)
        out.messages.append(Envelope(self.node_index, source, reply))

    def _on_tail_query(
        self, source: int, state: AccountState, query: TailQuery, out: ReadyBuilder
    ) -> None:
        highest = max(state.known_tail, max(state.acceptor.votes, default=-1),
                      max(state.learned, default=-1))
        report = TailReport(query.account, query.nonce, state.chosen_through, highest)
        out.messages.append(Envelope(self.node_index, source, report))

    def _on_tail_report(
        self, source: int, state: AccountState, report: TailReport, now_ms: int
    ) -> None:
        self._note_tail(state, report.chosen_through, source)
        barrier = state.barriers.get(report.nonce)
        if barrier is None or barrier.target is not None:
            return
        barrier.reports[source] = report
        if len(barrier.reports) >= self.quorum:
            barrier.target = max(max(r.chosen_through, r.highest_vote)
                                 for r in barrier.reports.values())
            barrier.prepare_seq = self._prepare_seq
            # Give votes in flight a moment to be learned before settling them ourselves.
            barrier.deadline_ms = now_ms + self.config.barrier_settle_ms

    def _check_barriers(
        self, account: str, state: AccountState, out: ReadyBuilder, log_end_seq: int = 0
    ) -> None:
        """Pass every barrier whose target is committed here, or proven past the log's end."""
        for nonce, barrier in list(state.barriers.items()):
            target = barrier.target
            if target is None:
                continue
            if state.chosen_through >= target or barrier.prepare_seq < log_end_seq:
                del state.barriers[nonce]
                out.barriers.append(BarrierDone(account, nonce, state.chosen_through))

    def _on_tails_request(self, source: int, request: TailsRequest, out: ReadyBuilder) -> None:
        limit = min(request.limit, self.config.tails_batch)
        tails = tuple(self._store.account_tails(request.after, limit))
        reply = TailsReply(request.after, tails, complete=len(tails) < limit)
        out.messages.append(Envelope(self.node_index, source, reply))

    # --------------------------------------------------------------- proposer

    def _begin_prepare(
        self, state: AccountState, proposer: Proposer, now_ms: int, out: ReadyBuilder
    ) -> None:
        ballot = self._new_ballot(state, out)
        self._prepare_seq += 1
        proposer.prepare_seq = self._prepare_seq
        self._broadcast(proposer.begin_prepare(ballot, now_ms, self.config.resend_ms), out)

    def _new_ballot(self, state: AccountState, out: ReadyBuilder) -> Ballot:
        """A ballot above every round seen here and every round this node ever used."""
        self._round = max(self._round, state.max_seen_round) + 1
        if self._round > self._reserved_round:
            # Durable before any message carrying the round leaves (Ready order).
            self._reserved_round = self._round + self.config.round_reservation
            out.writes.append(RoundWrite(self._reserved_round))
        return Ballot(self._round, self.node_index)

    def _on_promise(
        self, source: int, account: str, state: AccountState, promise: Promise,
        now_ms: int, out: ReadyBuilder,
    ) -> None:
        state.max_seen_round = max(state.max_seen_round, promise.ballot.round)
        self._note_tail(state, promise.chosen_through, source)
        if promise.chosen:
            # The acceptor knows these slots are chosen: learn them outright.
            for offset, value in enumerate(promise.chosen):
                self._learn(account, state, promise.from_slot + offset, value, out)
            return
        proposer = state.proposer
        if (
            proposer is None
            or proposer.phase is not Phase.PREPARE
            or promise.ballot != proposer.ballot
            or promise.from_slot != proposer.slot
        ):
            return  # stale or duplicate
        phase_one = proposer.on_promise(source, promise, self.quorum)
        if phase_one is None:
            return
        if phase_one.value is None:
            # Nobody in a majority voted here and we have nothing to propose:
            # the log ends before this slot.
            state.proposer = None
            self._check_barriers(account, state, out, log_end_seq=proposer.prepare_seq)
            return
        if self.config.fast_path:
            state.leader = Leadership(proposer.ballot, proposer.slot, phase_one.later_votes,
                                      proposer.slot)
        accept = proposer.begin_accept(
            proposer.ballot, phase_one.value, now_ms, self.config.resend_ms
        )
        self._broadcast(accept, out)

    def _on_accepted(
        self, account: str, state: AccountState, source: int, accepted: Accepted,
        out: ReadyBuilder,
    ) -> None:
        proposer = state.proposer
        if (
            proposer is None
            or proposer.phase is not Phase.ACCEPT
            or accepted.ballot != proposer.ballot
            or accepted.slot != proposer.slot
        ):
            return
        if not proposer.on_accepted(source, self.quorum):
            return
        value = proposer.proposal
        assert value is not None
        self._commit(account, state, proposer.slot, value, out, chosen_under=proposer.ballot)
        for peer in range(self.config.cluster_size):
            if peer != self.node_index:
                learn = Learn(account, accepted.slot, value)
                out.messages.append(Envelope(self.node_index, peer, learn))

    def _on_nack(self, source: int, state: AccountState, nack: Nack, now_ms: int) -> None:
        state.max_seen_round = max(state.max_seen_round, nack.promised.round)
        self._note_tail(state, nack.chosen_through, source)
        if state.leader is not None and nack.ballot == state.leader.ballot:
            state.leader = None
        proposer = state.proposer
        if (
            proposer is None
            or proposer.phase is Phase.BACKOFF
            or nack.ballot != proposer.ballot
            or nack.slot != proposer.slot
        ):
            return
        delay_ms = backoff_ms(
            proposer.attempt, self._rng, self.config.backoff_base_ms, self.config.backoff_cap_ms
        )
        proposer.back_off(now_ms + delay_ms)

    # ---------------------------------------------------------------- learner

    def _learn(
        self, account: str, state: AccountState, slot: int, value: bytes, out: ReadyBuilder
    ) -> None:
        """`value` is chosen at `slot`: commit it, or hold it until the gap fills."""
        if slot <= state.chosen_through:
            return
        if slot > state.chosen_through + 1:
            if slot - state.chosen_through <= self.config.learn_ahead_limit:
                held = state.learned.setdefault(slot, value)
                assert held == value, f"agreement: two values learned at {account}/{slot}"
            state.known_tail = max(state.known_tail, slot)
            return
        self._commit(account, state, slot, value, out, chosen_under=None)
        while state.chosen_through + 1 in state.learned:
            following = state.chosen_through + 1
            self._commit(account, state, following, state.learned.pop(following), out,
                         chosen_under=None)

    def _commit(
        self, account: str, state: AccountState, slot: int, value: bytes,
        out: ReadyBuilder, chosen_under: Ballot | None,
    ) -> None:
        """Extend the chosen prefix by one slot.

        `chosen_under` is our ballot when our own accepts chose the value; then a
        leadership under that ballot carries on to the next slot.
        """
        assert slot == state.chosen_through + 1
        held = state.learned.pop(slot, None)
        assert held is None or held == value, f"agreement: two values at {account}/{slot}"
        out.writes.append(ChosenWrite(account, slot, value))
        out.committed.append(Committed(account, slot, value))
        state.chosen_through = slot
        state.known_tail = max(state.known_tail, slot)
        state.acceptor.votes.pop(slot, None)
        leader = state.leader
        if leader is not None:
            if chosen_under == leader.ballot and leader.next_slot == slot:
                leader.next_slot = slot + 1
                leader.later_votes.pop(slot, None)
            else:
                state.leader = None  # another proposer decided; our promise is likely gone
        proposer = state.proposer
        if proposer is not None and proposer.slot == slot:
            state.proposer = None
            if proposer.value is not None:
                out.outcomes.append(Outcome(account, slot, value, proposer.value))
            state.recovery_at_ms = None
        assert state.proposer is None or state.proposer.slot > slot

    # ---------------------------------------------------------------- catch-up

    def _note_tail(self, state: AccountState, tail: int, source: int) -> None:
        if tail > state.known_tail:
            state.known_tail = tail
            state.catch_up_source = source if source != self.node_index else None

    def _on_catch_up_reply(
        self, source: int, account: str, state: AccountState, reply: CatchUpReply,
        now_ms: int, out: ReadyBuilder,
    ) -> None:
        before = state.chosen_through
        for offset, value in enumerate(reply.values):
            self._learn(account, state, reply.from_slot + offset, value, out)
        self._note_tail(state, reply.chosen_through, source)
        if state.chosen_through > before and state.known_tail > state.chosen_through:
            # Progress, and more to fetch: ask the same peer again straight away.
            state.catch_up_source = source
            self._request_catch_up(account, state, now_ms, out)

    def _on_tails_reply(
        self, source: int, reply: TailsReply, now_ms: int, out: ReadyBuilder
    ) -> None:
        self._tails_cursor = "" if reply.complete or not reply.tails else reply.tails[-1].account
        far_behind = False
        for tail in reply.tails:
            ours = self.chosen_through(tail.account)
            if tail.chosen_through <= ours:
                continue
            # A busy follower trails by the Learns in flight; a node that missed writes
            # (down, partitioned, new) trails by far more.
            far_behind |= tail.chosen_through - ours > CATCH_UP_PAGING_GAP
            state = self._state(tail.account, now_ms)
            self._note_tail(state, tail.chosen_through, source)
            self._after_event(tail.account, state, now_ms, out)
        if far_behind and self._tails_cursor:
            # Catching up: page on through the peer's accounts now, not a tick later, so
            # a node that missed many accounts finds them all in a few round trips. The
            # tick waits meanwhile, so only one scan runs.
            request = TailsRequest(self._tails_cursor, self.config.tails_batch)
            out.messages.append(Envelope(self.node_index, source, request))
            self._next_anti_entropy_ms = now_ms + self.config.anti_entropy_ms

    def _request_catch_up(
        self, account: str, state: AccountState, now_ms: int, out: ReadyBuilder
    ) -> None:
        peer = state.catch_up_source
        if peer is None or peer == self.node_index:
            peer = self._random_peer()
        state.catch_up_source = None  # if this peer fails us, the retry asks another
        request = CatchUpRequest(account, state.chosen_through + 1, self.config.catch_up_batch)
        out.messages.append(Envelope(self.node_index, peer, request))
        state.catch_up_at_ms = now_ms + self.config.resend_ms

    # ------------------------------------------------------------------ timers

    def _after_event(
        self, account: str, state: AccountState, now_ms: int, out: ReadyBuilder
    ) -> None:
        """Start catch-up when behind, plan recovery of undecided slots, arm timers."""
        self._check_barriers(account, state, out)
        behind = state.known_tail > state.chosen_through and self.config.cluster_size > 1
        if not behind:
            state.catch_up_at_ms = None
        elif state.catch_up_at_ms is None:
            self._request_catch_up(account, state, now_ms, out)
        self._schedule_recovery(account, state, now_ms)
        self._arm(account, state)

    def _schedule_recovery(self, account: str, state: AccountState, now_ms: int) -> None:
        if state.proposer is not None or not state.unsettled():
            state.recovery_at_ms = None
        elif state.recovery_at_ms is None:
            state.recovery_at_ms = max(now_ms, state.last_activity_ms) + (
                self.config.recovery_idle_ms + self._jitter_ms(self.config.recovery_idle_ms)
            )
        self._arm(account, state)

    def _on_timer(self, account: str, state: AccountState, now_ms: int, out: ReadyBuilder) -> None:
        proposer = state.proposer
        if proposer is not None and proposer.deadline_ms <= now_ms:
            if proposer.phase is Phase.BACKOFF:
                self._begin_prepare(state, proposer, now_ms, out)
            else:
                self._resend(proposer, now_ms, out)
        if state.catch_up_at_ms is not None and state.catch_up_at_ms <= now_ms:
            self._request_catch_up(account, state, now_ms, out)
        for barrier in state.barriers.values():
            if barrier.deadline_ms <= now_ms:
                self._on_barrier_timer(account, state, barrier, now_ms, out)
        if state.recovery_at_ms is not None and state.recovery_at_ms <= now_ms:
            state.recovery_at_ms = None
            idle_since_ms = state.last_activity_ms + self.config.recovery_idle_ms
            if state.proposer is None and state.unsettled() and idle_since_ms <= now_ms:
                if self._proposer_still_busy(state, now_ms):
                    state.recovery_at_ms = now_ms + self.config.recovery_idle_ms
                else:
                    self._settle(account, state, now_ms, out)
        self._after_event(account, state, now_ms, out)

    def _proposer_still_busy(self, state: AccountState, now_ms: int) -> bool:
        """Is the node whose value we voted for alive and not yet past our patience?

        A loaded leader may take longer than recovery_idle_ms to send a Learn; taking
        the account over then only makes two proposers fight. Patience is bounded, so
        a proposer that is alive but forgot the slot (restarted) is settled for.
        """
        vote = state.acceptor.votes.get(state.chosen_through + 1)
        if vote is None or vote.ballot.node_index == self.node_index:
            return False
        heard_ms = self._heard_ms[vote.ballot.node_index]
        return (now_ms - heard_ms < self.config.recovery_idle_ms
                and now_ms - state.last_activity_ms < self.config.recovery_patience_ms)

    def _on_barrier_timer(
        self, account: str, state: AccountState, barrier: Barrier, now_ms: int, out: ReadyBuilder
    ) -> None:
        barrier.deadline_ms = now_ms + self.config.resend_ms
        if barrier.target is None:
            query = TailQuery(account, barrier.nonce)
            for node in range(self.config.cluster_size):
                if node not in barrier.reports:
                    out.messages.append(Envelope(self.node_index, node, query))
        elif state.proposer is None and state.chosen_through < barrier.target:
            self._settle(account, state, now_ms, out)

    def _settle(self, account: str, state: AccountState, now_ms: int, out: ReadyBuilder) -> None:
        """Run Paxos at the first undecided slot with no value of our own.

        Adopts any vote a majority reports (or, failing that, a vote our own
        acceptor holds); finds the log's end where there is none.
        """
        slot = state.chosen_through + 1
        own_vote = state.acceptor.votes.get(slot)
        proposer = self.proposer_class(account, slot, None,
                                       fallback=own_vote.value if own_vote else None)
        state.proposer = proposer
        self._begin_prepare(state, proposer, now_ms, out)

    def _resend(self, proposer: Proposer, now_ms: int, out: ReadyBuilder) -> None:
        request = proposer.pending_request()
        answered = proposer.answered()
        for node in range(self.config.cluster_size):
            if node not in answered:
                out.messages.append(Envelope(self.node_index, node, request))
        proposer.deadline_ms = now_ms + self.config.resend_ms

    def _arm(self, account: str, state: AccountState) -> None:
        deadlines = [
            deadline for deadline in (
                state.proposer.deadline_ms if state.proposer is not None else None,
                state.catch_up_at_ms,
                state.recovery_at_ms,
                *(barrier.deadline_ms for barrier in state.barriers.values()),
            ) if deadline is not None
        ]
        if not deadlines:
            return
        due_ms = min(deadlines)
        if state.timer_ms is None or due_ms < state.timer_ms:
            state.timer_ms = due_ms
            self._timer_seq += 1
            heapq.heappush(self._timers, (due_ms, self._timer_seq, account))

    # ----------------------------------------------------------------- helpers

    def _restored_round(self) -> int:
        """Resume above every round a previous incarnation may have used."""
        return self._store.reserved_round()

    def _state(self, account: str, now_ms: int) -> AccountState:
        state = self._accounts.get(account)
        if state is None:
            record = self._store.account_record(account)
            votes = {vote.slot: vote for vote in record.accepted}
            assert all(slot > record.chosen_through for slot in votes)
            state = AccountState(
                acceptor=AcceptorState(record.promised, votes),
                chosen_through=record.chosen_through,
                known_tail=record.chosen_through,
                last_activity_ms=now_ms,
            )
            self._accounts[account] = state
        return state

    def _chosen_reader(self, account: str) -> acceptor.ChosenReader:
        store = self._store

        def read(from_slot: int, limit: int) -> tuple[bytes, ...]:
            return tuple(store.chosen_values(account, from_slot, limit))

        return read

    def _broadcast(self, message: Message, out: ReadyBuilder) -> None:
        for node in range(self.config.cluster_size):
            out.messages.append(Envelope(self.node_index, node, message))

    def _random_peer(self) -> int:
        assert self.config.cluster_size > 1
        offset = 1 + int(self._rng.random() * (self.config.cluster_size - 1))
        return (self.node_index + offset) % self.config.cluster_size

    def _jitter_ms(self, span_ms: int) -> int:
        return int(self._rng.random() * span_ms)
