"""Liveness: what keeps every account moving when messages are lost or nodes fail.

After each event on an account the node calls `after_event`: barriers that are
done pass, a node that knows it is behind asks a peer for the chosen values,
slots nobody decides get a settle planned, and the account's timer is armed.
When the timer fires (`tick`): Phase 1 again after a backoff, resends of
unanswered Prepares and Accepts, catch-up retries, read-barrier queries and
settles, and the planned settle itself.
"""

from __future__ import annotations

from ledger.paxos import barriers, catchup, learner, phases, recovery
from ledger.paxos.account import AccountState
from ledger.paxos.backoff import RandomSource, random_peer
from ledger.paxos.config import PaxosConfig
from ledger.paxos.errors import RoundsExhausted
from ledger.paxos.proposer import Phase, Proposer
from ledger.paxos.ready import ReadyBuilder
from ledger.paxos.rounds import Rounds
from ledger.paxos.stats import PaxosStats
from ledger.paxos.timers import TimerQueue


class Liveness:
    """One node's timers and the work they do, for all accounts.

    `rounds` issues the node's ballots; `heard_ms[n]` is when node n was last
    heard from (the node updates it); `proposer_class` makes the proposers; `stats`
    counts the rounds, takeovers, resends and catch-ups it starts.
    """

    __slots__ = ("_config", "_heard_ms", "_node_index", "_proposer_class", "_rng", "_rounds",
                 "_timers", "stats")

    def __init__(
        self, node_index: int, config: PaxosConfig, rng: RandomSource, rounds: Rounds,
        heard_ms: list[int], proposer_class: type[Proposer], stats: PaxosStats,
    ) -> None:
        self.stats = stats
        self._node_index = node_index
        self._config = config
        self._rng = rng
        self._rounds = rounds
        self._heard_ms = heard_ms
        self._proposer_class = proposer_class
        self._timers = TimerQueue()

    def next_timer_ms(self) -> int | None:
        return self._timers.earliest_ms()

    def tick(self, accounts: dict[str, AccountState], now_ms: int, out: ReadyBuilder) -> None:
        """Fire every account timer due by `now_ms`."""
        while (due := self._timers.pop_due(now_ms)) is not None:
            due_ms, account = due
            state = accounts.get(account)
            if state is None:
                continue
            if state.timer_ms == due_ms:
                state.timer_ms = None
            if state.quarantined is None:
                self._on_timer(account, state, now_ms, out)

    def after_event(
        self, account: str, state: AccountState, now_ms: int, out: ReadyBuilder
    ) -> None:
        """Start catch-up when behind, plan recovery of undecided slots, arm timers."""
        if state.quarantined is not None:
            return
        barriers.complete(state.barriers, account, state.chosen_through, out)
        behind = state.known_tail > state.chosen_through and self._config.cluster_size > 1
        if not behind:
            state.catch_up_at_ms = None
        elif state.catch_up_at_ms is None:
            self.request_catch_up(account, state, now_ms, out)
        self.plan_recovery(account, state, now_ms)

    def plan_recovery(self, account: str, state: AccountState, now_ms: int) -> None:
        """Plan a settle of the account's undecided slots if it needs one; arm its timer."""
        recovery.schedule(state, now_ms, self._config.recovery_idle_ms, self._rng)
        self._timers.arm(account, state)

    def begin_prepare(
        self, state: AccountState, proposer: Proposer, now_ms: int, out: ReadyBuilder
    ) -> None:
        """Phase 1 under a new ballot of ours (or, with no round left, quarantine)."""
        rounds = self._rounds
        try:
            ballot = rounds.next_ballot(state.max_seen_round, out.writes)
        except RoundsExhausted as exhausted:
            learner.quarantine(proposer.account, state, f"ballot rounds exhausted: {exhausted}",
                               out)
            return
        rounds.prepare_seq += 1
        self.stats.phase_one_rounds += 1
        proposer.prepare_seq = rounds.prepare_seq
        prepare = proposer.begin_prepare(ballot, now_ms, self._config.resend_ms)
        out.broadcast(self._node_index, self._config.cluster_size, prepare)

    def request_catch_up(
        self, account: str, state: AccountState, now_ms: int, out: ReadyBuilder
    ) -> None:
        """Ask a peer known to be ahead (else any peer) for the chosen values we lack."""
        peer = state.catch_up_source
        if peer is None or peer == self._node_index:
            peer = random_peer(self._rng, self._node_index, self._config.cluster_size)
        self.stats.catch_up_requests += 1
        catchup.ask(account, state, peer, now_ms, self._config, self._node_index, out)

    def settle(self, account: str, state: AccountState, now_ms: int, out: ReadyBuilder) -> None:
        """Run Paxos at the first undecided slot with no value of our own.

        Adopts any vote a majority reports (or, failing that, a vote our own
        acceptor holds); finds the log's end where there is none.
        """
        slot = state.chosen_through + 1
        own_vote = state.acceptor.votes.get(slot)
        proposer = self._proposer_class(account, slot, None,
                                        fallback=own_vote.value if own_vote else None)
        state.proposer = proposer
        self.stats.takeovers += 1
        self.begin_prepare(state, proposer, now_ms, out)

    def _on_timer(
        self, account: str, state: AccountState, now_ms: int, out: ReadyBuilder
    ) -> None:
        config = self._config
        proposer = state.proposer
        if proposer is not None and proposer.deadline_ms <= now_ms:
            if proposer.phase is Phase.BACKOFF:
                self.begin_prepare(state, proposer, now_ms, out)
            else:
                self.stats.resends += 1
                phases.resend(proposer, now_ms, self._node_index, config, out)
        if state.catch_up_at_ms is not None and state.catch_up_at_ms <= now_ms:
            self.request_catch_up(account, state, now_ms, out)
        for barrier in state.barriers.values():
            if barrier.deadline_ms > now_ms:
                continue
            target = barriers.on_timer(barrier, account, now_ms, config.resend_ms,
                                       self._node_index, config.cluster_size, out)
            if target is not None and state.proposer is None and state.chosen_through < target:
                self.settle(account, state, now_ms, out)
        if state.recovery_at_ms is not None and state.recovery_at_ms <= now_ms and (
            recovery.on_timer(state, now_ms, self._heard_ms, self._node_index, config)
        ):
            self.settle(account, state, now_ms, out)
        self.after_event(account, state, now_ms, out)
