"""Which accounts' state a node keeps in memory: the working set, not every account it
ever touched.

The state of an account is a cache of its durable record plus what is in flight. An
account whose state holds nothing in flight (no proposal, read barrier, catch-up,
settle or held value) and nothing undecided is evicted once it has been idle a while,
or at once when the table is over its bound, least recently used first; it is
reloaded from the store (staged writes included) when it is next touched. What
eviction loses is only ever liveness help: the range promise of an idle account (its
next write runs Phase 1), the highest round seen (a refusal teaches it again), the
chosen tail a peer reported (anti-entropy finds it again).

An account this node knows nothing durable about (no promise, nothing chosen), such as
one named by a read or a refused request that was never opened, is dropped as soon as
nothing is in flight on it: reads of ids that do not exist leave nothing behind.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import islice

from ledger.paxos.account import AccountState, load_account_state
from ledger.paxos.ballot import NULL_BALLOT
from ledger.paxos.config import PaxosConfig
from ledger.paxos.records import DurableView

EVICT_EVERY_MS = 1_000  # how often idle accounts are looked for
EVICT_SCAN = 64  # accounts looked at per sweep, besides those over the bound


def evictable(state: AccountState) -> bool:
    """Is all the state holds durable (or safe to lose), with nothing in flight?"""
    return (state.proposer is None and not state.barriers and state.catch_up_at_ms is None
            and state.recovery_at_ms is None and state.quarantined is None
            and not state.unsettled())


class AccountTable:
    """Account states in least-recently-used order, bounded and evicted as above."""

    __slots__ = ("_config", "_floor", "_next_sweep_ms", "_store", "states")

    def __init__(self, store: DurableView, config: PaxosConfig, now_ms: int) -> None:
        self._store = store
        self._config = config
        self._floor = store.round_floor()  # set by `ledger recover` on a stopped node
        self.states: dict[str, AccountState] = {}  # least recently used first
        self._next_sweep_ms = now_ms + EVICT_EVERY_MS

    def __len__(self) -> int:
        return len(self.states)

    def __iter__(self) -> Iterator[str]:
        return iter(self.states)

    def __getitem__(self, account: str) -> AccountState:
        return self.states[account]

    def get(self, account: str) -> AccountState | None:
        """The account's state if it is in memory (its recency is not touched)."""
        return self.states.get(account)

    def touch(self, account: str, now_ms: int) -> AccountState:
        """The account's state, loaded if it is not in memory; now the most recently used."""
        states = self.states
        state = states.pop(account, None)
        if state is None:
            state = load_account_state(self._store.account_record(account), now_ms,
                                       self._floor)
        states[account] = state
        return state

    def release(self, account: str, state: AccountState) -> None:
        """After an event: drop the state of an account this node knows nothing durable
        about, once nothing is in flight on it."""
        if (state.chosen_through < 0 and state.acceptor.promised == NULL_BALLOT
                and state.leader is None and evictable(state)):
            self.states.pop(account, None)

    def sweep(self, now_ms: int) -> None:
        """Evict idle accounts now and then, and the least recently used ones while the
        table is over its bound (those always, however recently they were active)."""
        config = self._config
        over = len(self.states) - config.max_accounts_in_memory
        if now_ms < self._next_sweep_ms and over <= 0:
            return
        self._next_sweep_ms = now_ms + EVICT_EVERY_MS
        idle_before_ms = now_ms - config.evict_idle_ms
        states = self.states
        for account in list(islice(states, EVICT_SCAN + max(over, 0))):
            state = states[account]
            if evictable(state) and (over > 0 or state.last_activity_ms <= idle_before_ms):
                del states[account]
                over -= 1
