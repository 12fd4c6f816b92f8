"""Settling slots nobody decides: when a node takes an undecided slot over itself.

A node that holds votes, or knows of chosen slots it has not got, waits until
the account has been idle for `recovery_idle_ms` (plus jitter, so nodes do not
all step in at once), then runs Paxos at the first undecided slot with no value
of its own. It waits longer while the proposer of the vote it holds is still
heard from, up to `recovery_patience_ms`.
"""

from __future__ import annotations

from collections.abc import Sequence

from ledger.paxos.account import AccountState
from ledger.paxos.backoff import RandomSource, jitter_ms
from ledger.paxos.config import PaxosConfig


def schedule(state: AccountState, now_ms: int, idle_ms: int, rng: RandomSource) -> None:
    """Plan a settle while the account is unsettled and no proposal of ours drives it.

    The delay is `idle_ms` after the account's last activity, plus jitter below
    `idle_ms` (drawn only when a new settle is planned).
    """
    if state.proposer is not None or not state.unsettled():
        state.recovery_at_ms = None
    elif state.recovery_at_ms is None:
        state.recovery_at_ms = max(now_ms, state.last_activity_ms) + (
            idle_ms + jitter_ms(rng, idle_ms)
        )


def on_timer(
    state: AccountState, now_ms: int, heard_ms: Sequence[int], node_index: int,
    config: PaxosConfig,
) -> bool:
    """The planned settle is due: True when the node should settle now.

    Otherwise there is nothing left to settle, the account was busy again, or the
    proposer is still busy (then the settle is planned again, one idle period on).
    `heard_ms[n]` is when node n was last heard from.
    """
    state.recovery_at_ms = None
    idle_since_ms = state.last_activity_ms + config.recovery_idle_ms
    if state.proposer is None and state.unsettled() and idle_since_ms <= now_ms:
        if proposer_still_busy(state, now_ms, heard_ms, node_index, config):
            state.recovery_at_ms = now_ms + config.recovery_idle_ms
            return False
        return True
    return False


def proposer_still_busy(
    state: AccountState, now_ms: int, heard_ms: Sequence[int], node_index: int,
    config: PaxosConfig,
) -> bool:
    """Is the node whose value we voted for alive and not yet past our patience?

    A loaded leader may take longer than recovery_idle_ms to send a Learn; taking
    the account over then only makes two proposers fight. Patience is bounded, so
    a proposer that is alive but forgot the slot (restarted) is settled for.
    """
    vote = state.acceptor.votes.get(state.chosen_through + 1)
    if vote is None or vote.ballot.node_index == node_index:
        return False
    return (now_ms - heard_ms[vote.ballot.node_index] < config.recovery_idle_ms
            and now_ms - state.last_activity_ms < config.recovery_patience_ms)
