"""The two phases of Paxos on one account, as a node runs them.

The acceptor's side answers Prepare and Accept (the rules are in `acceptor`);
the proposer's side handles the Promise, Accepted and Nack answers to its own
round (the per-slot bookkeeping is in `proposer`). These functions keep the
account's state around the roles current: activity, rounds seen, the range
promise (`Leadership`), the chosen tail others report. The node supplies the
ballots, the clock and the randomness.
"""

from __future__ import annotations

from ledger.paxos import acceptor, barriers, learner
from ledger.paxos.account import AccountState, Leadership
from ledger.paxos.backoff import RandomSource, backoff_ms
from ledger.paxos.config import PaxosConfig
from ledger.paxos.messages import (
    Accept,
    Accepted,
    Envelope,
    Learn,
    Nack,
    Prepare,
    Promise,
)
from ledger.paxos.proposer import Phase, Proposer
from ledger.paxos.ready import ReadyBuilder
from ledger.paxos.records import DurableView

# --------------------------------------------------------------- acceptor


def on_prepare(
    state: AccountState, source: int, prepare: Prepare, now_ms: int, node_index: int,
    store: DurableView, config: PaxosConfig, out: ReadyBuilder,
) -> None:
    """Promise (or refuse) and answer; a higher ballot ends our own range promise."""
    if source != node_index:
        state.last_activity_ms = now_ms
    state.max_seen_round = max(state.max_seen_round, prepare.ballot.round)
    reply, writes = acceptor.on_prepare(
        state.acceptor, prepare, state.chosen_through,
        acceptor.chosen_reader(store, prepare.account), config.promise_chosen_limit,
        config.promise_chosen_bytes,
    )
    if state.leader is not None and prepare.ballot > state.leader.ballot:
        state.leader = None  # someone else is taking over the account
    out.writes.extend(writes)
    if reply is not None:
        out.messages.append(Envelope(node_index, source, reply))


def on_accept(
    state: AccountState, source: int, accept: Accept, now_ms: int, node_index: int,
    store: DurableView, accept_ahead_limit: int, out: ReadyBuilder,
) -> None:
    """Vote (or refuse, or tell the value chosen there) and answer.

    No vote is cast more than `accept_ahead_limit` slots past the chosen prefix: a
    node that far behind catches up first (refusing to vote is always safe), and a
    vote far out in the log cannot leave a slot nobody will ever settle.
    """
    if source != node_index:
        state.last_activity_ms = now_ms
    state.max_seen_round = max(state.max_seen_round, accept.ballot.round)
    # A proposer proposes at p only once 0..p-1 are chosen.
    state.note_tail(accept.slot - 1, source, node_index)
    if accept.slot > state.chosen_through + accept_ahead_limit:
        return
    reply, writes = acceptor.on_accept(
        state.acceptor, accept, state.chosen_through,
        acceptor.chosen_reader(store, accept.account),
    )
    if state.leader is not None and accept.ballot > state.leader.ballot:
        state.leader = None
    out.writes.extend(writes)
    if reply is not None:
        out.messages.append(Envelope(node_index, source, reply))


# --------------------------------------------------------------- proposer


def on_promise(
    state: AccountState, source: int, promise: Promise, now_ms: int, node_index: int,
    quorum: int, config: PaxosConfig, store: DurableView, out: ReadyBuilder,
) -> None:
    """Learn the chosen values a promise reports, or count it towards our Phase 1.

    With a majority, Phase 2 begins (and on the fast path the range promise is
    kept as leadership); when nobody voted at the slot and we have nothing to
    propose, the log ends before it, which passes barriers waiting on that.
    """
    account = promise.account
    state.max_seen_round = max(state.max_seen_round, promise.ballot.round)
    state.note_tail(promise.chosen_through, source, node_index)
    if promise.chosen:
        # The acceptor knows these slots are chosen: learn them outright.
        for offset, value in enumerate(promise.chosen):
            learner.learn(account, state, promise.from_slot + offset, value, source,
                          config.learn_ahead_limit, store, out)
        return
    proposer = state.proposer
    if (
        proposer is None
        or proposer.phase is not Phase.PREPARE
        or promise.ballot != proposer.ballot
        or promise.from_slot != proposer.slot
    ):
        return  # stale or duplicate
    phase_one = proposer.on_promise(source, promise, quorum)
    if phase_one is None:
        return
    if phase_one.value is None:
        # Nobody in a majority voted here and we have nothing to propose:
        # the log ends before this slot, whatever a peer said of its end.
        state.proposer = None
        state.known_tail = state.chosen_through
        state.catch_up_source = None
        barriers.complete(state.barriers, account, state.chosen_through, out,
                          log_end_seq=proposer.prepare_seq)
        return
    if config.fast_path:
        reported = [-1] * config.cluster_size  # (one that did not promise: nothing known)
        for node, reply in proposer.promises.items():
            reported[node] = reply.chosen_through
        state.leader = Leadership(proposer.ballot, proposer.slot, phase_one.later_votes,
                                  proposer.slot, list(reported), reported)
    accept = proposer.begin_accept(proposer.ballot, phase_one.value, now_ms, config.resend_ms)
    out.broadcast(node_index, config.cluster_size, accept)


def on_accepted(
    state: AccountState, source: int, accepted: Accepted, node_index: int, quorum: int,
    cluster_size: int, out: ReadyBuilder,
) -> None:
    """Count a vote for our proposal; with a majority it is chosen: commit, tell the peers."""
    leader = state.leader
    if leader is not None and accepted.ballot == leader.ballot:
        # (Late votes count too: they say how far the voter has got.)
        leader.peer_voted[source] = max(leader.peer_voted[source], accepted.slot)
        reported = leader.peer_chosen_through
        reported[source] = max(reported[source], accepted.chosen_through)
    proposer = state.proposer
    if (
        proposer is None
        or proposer.phase is not Phase.ACCEPT
        or accepted.ballot != proposer.ballot
        or accepted.slot != proposer.slot
    ):
        return
    if not proposer.on_accepted(source, quorum):
        return
    value = proposer.proposal
    assert value is not None  # set by begin_accept, which the ACCEPT phase implies
    account = accepted.account
    learner.commit(account, state, proposer.slot, value, out, chosen_under=proposer.ballot,
                   source=node_index)
    if state.quarantined is not None:
        return  # a peer had reported another value there: tell nobody ours
    for peer in range(cluster_size):
        if peer != node_index:
            learn = Learn(account, accepted.slot, value)
            out.messages.append(Envelope(node_index, peer, learn))


def on_nack(
    state: AccountState, source: int, nack: Nack, now_ms: int, node_index: int,
    rng: RandomSource, config: PaxosConfig,
) -> bool:
    """A higher ballot refused ours: drop the range promise, back off before a new round
    (True if this refusal made the proposer back off; False if it was stale)."""
    state.max_seen_round = max(state.max_seen_round, nack.promised.round)
    state.note_tail(nack.chosen_through, source, node_index)
    if state.leader is not None and nack.ballot == state.leader.ballot:
        state.leader = None
    proposer = state.proposer
    if (
        proposer is None
        or proposer.phase is Phase.BACKOFF
        or nack.ballot != proposer.ballot
        or nack.slot != proposer.slot
    ):
        return False
    delay_ms = backoff_ms(proposer.attempt, rng, config.backoff_base_ms, config.backoff_cap_ms)
    proposer.back_off(now_ms + delay_ms)
    return True


def accept_fast(
    state: AccountState, proposer: Proposer, value: bytes, now_ms: int, node_index: int,
    config: PaxosConfig, out: ReadyBuilder,
) -> bool:
    """Phase 2 straight away, when a range promise we hold covers the proposal's slot.

    The value is the vote a promise reported at the slot, if any, else `value`.
    False when no such promise holds (Phase 1 is needed).
    """
    leader = state.leader
    if not config.fast_path or leader is None or leader.next_slot != proposer.slot:
        return False
    vote = leader.later_votes.pop(proposer.slot, None)
    proposal = vote.value if vote is not None else value
    accept = proposer.begin_accept(leader.ballot, proposal, now_ms, config.resend_ms)
    out.broadcast(node_index, config.cluster_size, accept)
    return True


def resend(
    proposer: Proposer, now_ms: int, node_index: int, config: PaxosConfig, out: ReadyBuilder
) -> None:
    """Send the current phase's message again to the nodes that did not answer."""
    request = proposer.pending_request()
    answered = proposer.answered()
    for node in range(config.cluster_size):
        if node not in answered:
            out.messages.append(Envelope(node_index, node, request))
    proposer.deadline_ms = now_ms + config.resend_ms
