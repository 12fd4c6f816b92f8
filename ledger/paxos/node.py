"""One node's Paxos state for every account: acceptor, proposer and learner at once.

The node is sans-I/O. Each call (`propose`, `handle`, `tick`, `cancel`) takes the
current time and returns a `Ready`: writes to make durable, then messages to
send, then committed entries to apply. It reads durable state through a
`DurableView` and keeps in memory only what is undecided (`account`). Decided
slots live in storage.

The node owns the account table and routes each call and message to the
module whose job it is: `phases` (Prepare, Accept, Promise, Accepted, Nack),
`learner` (Learn, and every commit), `catchup` (catch-up and anti-entropy),
`barriers` (read barriers) and `liveness` (timers, resends, retries, settling
slots nobody decides, which `recovery` plans). `rounds` issues its ballots.
"""

from __future__ import annotations

from ledger.paxos import barriers, catchup, learner, phases
from ledger.paxos.account import AccountState, Leadership, load_account_state, peer_progress
from ledger.paxos.backoff import RandomSource
from ledger.paxos.ballot import NULL_BALLOT
from ledger.paxos.catchup import AntiEntropy
from ledger.paxos.config import PaxosConfig
from ledger.paxos.errors import InvariantViolation, ProposalInProgress, Quarantined
from ledger.paxos.liveness import Liveness
from ledger.paxos.messages import (
    Accept,
    Accepted,
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
from ledger.paxos.proposer import Proposer
from ledger.paxos.ready import Ready, ReadyBuilder
from ledger.paxos.records import AccountRecord, DurableView
from ledger.paxos.residency import AccountTable
from ledger.paxos.rounds import Rounds
from ledger.paxos.stats import PaxosStats

__all__ = ["PaxosNode", "ProposalInProgress", "Quarantined"]


class PaxosNode:
    """The sans-I/O Paxos state machine of one node, for all accounts."""

    #: The proposer implementation (tests plant broken variants here).
    proposer_class: type[Proposer] = Proposer
    #: What keeps accounts moving: timers, catch-up, settling (tests plant variants here).
    liveness_class: type[Liveness] = Liveness

    def __init__(
        self,
        node_index: int,
        config: PaxosConfig,
        store: DurableView,
        rng: RandomSource,
        now_ms: int,
    ) -> None:
        if not 0 <= node_index < config.cluster_size:
            raise InvariantViolation(
                f"node index {node_index} outside a cluster of {config.cluster_size}")
        self.node_index = node_index
        self.config = config
        self._store = store
        self._rng = rng
        self._rounds = Rounds(node_index, self._restored_round(), config.round_reservation)
        self._accounts = AccountTable(store, config, now_ms)
        self._anti_entropy = AntiEntropy(now_ms)
        self._unreadable: set[str] = set()  # quarantined because their records are damaged
        # When each peer was last heard from: a follower does not take over an account
        # whose proposer is still talking to it (a busy leader's Learns come late).
        self._heard_ms = [-(1 << 62)] * config.cluster_size
        self.stats = PaxosStats()
        self._liveness = self.liveness_class(node_index, config, rng, self._rounds,
                                             self._heard_ms, self.proposer_class, self.stats)
        # Read barrier nonces start at a random point of a 61-bit space: a restarted
        # node must not take a TailReport answering its previous life's barrier (same
        # nonce, older state) as an answer to a new one.
        self._next_nonce = 1 + (int(rng.random() * (1 << 53)) << 8)
        for account in store.accounts_with_votes():
            self._liveness.plan_recovery(account, self._state(account, now_ms), now_ms)

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

    def highest_slot(self, account: str) -> int:
        """The highest slot of `account` this node knows anything of: chosen, voted on or
        learned (past `chosen_through`: a slot it has not seen settled yet)."""
        state = self._accounts.get(account)
        if state is not None:
            return state.highest_slot()
        record = self._store.account_record(account)
        return max([record.chosen_through, *(vote.slot for vote in record.accepted)])

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

    def peer_lag(self) -> list[int]:
        """Per node, the slots chosen here in the accounts this node leads beyond how far
        the node holds them (`peer_progress`; 0 for this node): how far behind each peer
        is, as a leader sees it. It rises while a peer is down and falls once it has
        caught up (its votes report its prefix)."""
        lag = [0] * self.config.cluster_size
        for state in self._accounts.states.values():
            leader = state.leader
            if leader is not None:
                chosen_through = state.chosen_through
                for node, (voted, reported) in enumerate(zip(
                        leader.peer_voted, leader.peer_chosen_through, strict=True)):
                    progress = peer_progress(voted, reported)
                    if progress < chosen_through:
                        lag[node] += chosen_through - progress
        lag[self.node_index] = 0
        return lag

    def heard_ms(self) -> list[int]:
        """When each node was last heard from (a very old time: not since this start)."""
        return list(self._heard_ms)

    def in_memory(self) -> tuple[int, int]:
        """Account states held in memory, and the bound on them."""
        return len(self._accounts), self.config.max_accounts_in_memory

    def unreadable_count(self) -> int:
        """Accounts quarantined because their records are damaged."""
        return len(self._unreadable)

    def quarantine_reason(self, account: str) -> str | None:
        """Why this node stopped acting on `account` (None: it did not)."""
        state = self._accounts.get(account)
        return None if state is None else state.quarantined

    def recovering_accounts(self) -> int:
        """Accounts in memory still fenced after a recovery: not voting where they are
        behind until they have learned what was chosen there."""
        return sum(1 for state in self._accounts.states.values()
                   if state.acceptor.fence_slot > state.chosen_through)

    def leadership(self, account: str) -> Leadership | None:
        """The range promise this node holds on `account`, if any (read-only use)."""
        state = self._accounts.get(account)
        return None if state is None else state.leader

    def next_timer_ms(self) -> int:
        """The earliest time `tick` has work to do."""
        earliest_ms = self._liveness.next_timer_ms()
        if earliest_ms is not None:
            return min(earliest_ms, self._anti_entropy.next_ms)
        return self._anti_entropy.next_ms

    # ------------------------------------------------------------- operations

    def propose(self, account: str, value: bytes, now_ms: int) -> Ready:
        """Propose `value` at the account's next undecided slot.

        The proposal ends with an `Outcome` naming the value chosen there (ours or
        another that had to be adopted). Raises ProposalInProgress if one of ours
        is still in flight on this account.
        """
        out = ReadyBuilder()
        state = self._state(account, now_ms)
        if state.quarantined is not None:
            raise Quarantined(state.quarantined)
        state.last_activity_ms = now_ms
        current = state.proposer
        if current is not None:
            if current.value is not None:
                raise ProposalInProgress(account)
            current.value = value  # a slot being settled now carries our value too
            return out.build()
        proposer = self.proposer_class(account, state.chosen_through + 1, value)
        state.proposer = proposer
        if phases.accept_fast(state, proposer, value, now_ms, self.node_index, self.config, out):
            self.stats.fast_path_proposals += 1
        else:
            self._liveness.begin_prepare(state, proposer, now_ms, out)
        self._liveness.after_event(account, state, now_ms, out)
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
            self._liveness.after_event(account, state, now_ms, out)
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
        if state.quarantined is not None:
            raise Quarantined(state.quarantined)
        nonce = self._next_nonce
        self._next_nonce += 1
        barriers.begin(state.barriers, account, nonce, now_ms, self.config.resend_ms,
                       self.node_index, self.config.cluster_size, out)
        self._liveness.after_event(account, state, now_ms, out)
        return nonce, out.build()

    def cancel_barrier(self, account: str, nonce: int) -> None:
        state = self._accounts.get(account)
        if state is not None:
            state.barriers.pop(nonce, None)
            self._accounts.release(account, state)

    def handle(self, envelope: Envelope, now_ms: int) -> Ready:
        """Process one message addressed to this node."""
        if envelope.destination != self.node_index:
            raise InvariantViolation(
                f"node {self.node_index} handed an envelope for node {envelope.destination}")
        out = ReadyBuilder()
        message = envelope.message
        source = envelope.source
        self._heard_ms[source] = now_ms
        if isinstance(message, TailsRequest):
            reply = catchup.answer_tails(message, self._store, self.config.tails_batch)
            out.messages.append(Envelope(self.node_index, source, reply))
        elif isinstance(message, TailsReply):
            self._on_tails_reply(source, message, now_ms, out)
        else:
            self._on_account_message(source, message, now_ms, out)
        return out.build()

    def forget_peer(self, peer: int) -> None:
        """Node `peer` lost its state and rejoined (`ledger recover`): nothing counted from
        its former life may count any more.

        Its promises and votes of that life are forgotten on its side, so a tally that
        counted them could finish a quorum the node no longer stands behind. Its
        promises and votes drop out of every tally, its tail reports out of every read
        barrier, and every range promise (which may rest on its promise) is given up.
        Proposals carry on: they gather the answers they now miss again by resending.
        """
        if not 0 <= peer < self.config.cluster_size or peer == self.node_index:
            raise InvariantViolation(f"node {self.node_index} cannot forget node {peer}")
        for state in self._accounts.states.values():
            self.stats.leaderships_lost += state.leader is not None
            state.leader = None
            proposer = state.proposer
            if proposer is not None:
                proposer.promises.pop(peer, None)
                proposer.accepted_by.discard(peer)
            for barrier in state.barriers.values():
                barrier.reports.pop(peer, None)

    def quarantine_unreadable(self, account: str, reason: str, now_ms: int) -> Ready:
        """This node's records of `account` cannot be read (damaged): stop acting on it.

        Its state is not loaded (that is what failed); it stays quarantined, and never
        evicted, until the node is recovered. The alarm in the Ready says why.
        """
        out = ReadyBuilder()
        state = self._accounts.get(account)
        if state is None:
            state = load_account_state(AccountRecord(NULL_BALLOT, -1, ()), now_ms)
            self._accounts.states[account] = state
        if state.quarantined is None:
            learner.quarantine(account, state, reason, out)
            self._unreadable.add(account)
        return out.build()

    def release_repaired(self, account: str) -> None:
        """The account's damaged record was put back: act on it again, as after a restart
        (its state is loaded afresh from the store at the next touch)."""
        if account in self._unreadable:  # never a quarantine raised for another reason
            self._unreadable.discard(account)
            self._accounts.states.pop(account, None)

    def tick(self, now_ms: int) -> Ready:
        """Fire due timers: resends, retries after backoff, catch-up, recovery, anti-entropy."""
        out = ReadyBuilder()
        self._accounts.sweep(now_ms)
        self._liveness.tick(self._accounts.states, now_ms, out)
        self._anti_entropy.tick(now_ms, self._rng, self.config, self.node_index, out)
        return out.build()

    # ----------------------------------------------------- message dispatching

    def _on_account_message(
        self, source: int, message: Message, now_ms: int, out: ReadyBuilder
    ) -> None:
        assert not isinstance(message, (TailsRequest, TailsReply))  # `handle` took those
        account = message.account
        state = self._state(account, now_ms)
        if state.quarantined is not None:
            return  # this node no longer acts on the account (an alarm said why)
        index = self.node_index
        config = self.config
        leader = state.leader
        if isinstance(message, Prepare):
            phases.on_prepare(state, source, message, now_ms, index, self._store, config, out)
        elif isinstance(message, Accept):
            phases.on_accept(state, source, message, now_ms, index, self._store,
                             config.accept_ahead_limit, out)
        elif isinstance(message, Promise):
            phases.on_promise(state, source, message, now_ms, index, self.quorum, config,
                              self._store, out)
        elif isinstance(message, Accepted):
            phases.on_accepted(state, source, message, index, self.quorum, config.cluster_size,
                               out)
        elif isinstance(message, Nack):
            if phases.on_nack(state, source, message, now_ms, index, self._rng, config):
                self.stats.backoffs += 1
        elif isinstance(message, Learn):
            if source != index:
                state.last_activity_ms = now_ms
            learner.learn(account, state, message.slot, message.value, source,
                          config.learn_ahead_limit, self._store, out)
        elif isinstance(message, CatchUpRequest):
            reply = catchup.answer(message, state.chosen_through, self._store,
                                   config.catch_up_batch, config.catch_up_bytes)
            out.messages.append(Envelope(index, source, reply))
        elif isinstance(message, TailQuery):
            report = barriers.answer(message, state.chosen_through, state.highest_slot())
            out.messages.append(Envelope(index, source, report))
        elif isinstance(message, TailReport):
            state.note_tail(message.chosen_through, source, index)
            barriers.on_report(state.barriers, source, message, self.quorum,
                               self._rounds.prepare_seq, now_ms, config.barrier_settle_ms)
        elif isinstance(message, CatchUpReply):
            if catchup.on_reply(state, source, message, index, config.learn_ahead_limit,
                                self._store, out):
                self._liveness.request_catch_up(account, state, now_ms, out)
        else:
            raise InvariantViolation(f"not a Paxos message: {message!r}")
        if state.leader is not leader:
            self.stats.leaderships_lost += leader is not None
            self.stats.leaderships_won += state.leader is not None
        self._liveness.after_event(account, state, now_ms, out)
        self._accounts.release(account, state)

    def _on_tails_reply(
        self, source: int, reply: TailsReply, now_ms: int, out: ReadyBuilder
    ) -> None:
        """Note every account on which the peer is ahead; page on if far behind on any."""
        ahead, far_behind = self._anti_entropy.on_reply(reply, self.chosen_through)
        for tail in ahead:
            state = self._state(tail.account, now_ms)
            state.note_tail(tail.chosen_through, source, self.node_index)
            self._liveness.after_event(tail.account, state, now_ms, out)
        if far_behind:
            self._anti_entropy.page_on(source, now_ms, self.config, self.node_index, out)

    # ----------------------------------------------------------------- helpers

    def _restored_round(self) -> int:
        """Resume above every round a previous incarnation may have used, and above the
        floor a recovery set (rounds whose promises this node may have lost)."""
        return max(self._store.reserved_round(), self._store.round_floor())

    def _state(self, account: str, now_ms: int) -> AccountState:
        return self._accounts.touch(account, now_ms)
