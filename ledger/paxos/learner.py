"""The learner role for one account: extend the chosen prefix, one slot at a time.

A value learned beyond a gap is held (up to a bound) until the slots before it
are chosen too. A node never overwrites or contradicts a value it knows to be
chosen: a peer that reports another value for a slot (held, committed or stored
here) is not believed, and the account is quarantined on this node with an alarm
naming both values and the peer. That is never a crash: every other account
carries on. (The fault model is crash-fault: a member's report is believed unless
it contradicts what this node knows; keeping strangers out is authentication's job.)
"""

from __future__ import annotations

from ledger.paxos.account import AccountState
from ledger.paxos.ballot import Ballot
from ledger.paxos.ready import Alarm, Committed, Outcome, ReadyBuilder
from ledger.paxos.records import ChosenWrite, DurableView

#: How much of a value an alarm shows.
SHOWN_BYTES = 24


def learn(
    account: str, state: AccountState, slot: int, value: bytes, source: int,
    learn_ahead_limit: int, store: DurableView, out: ReadyBuilder,
) -> None:
    """Node `source` says `value` is chosen at `slot`: commit it, or hold it until the
    gap fills; a report that contradicts what this node knows quarantines the account."""
    if state.quarantined is not None:
        return
    if slot <= state.chosen_through:
        known = chosen_value(account, slot, store, out)
        if known != value:
            quarantine(account, state, conflict(slot, known, "chosen here", value, source), out)
        return
    if slot > state.chosen_through + 1:
        if slot - state.chosen_through <= learn_ahead_limit:
            held = state.learned.setdefault(slot, (value, source))
            if held[0] != value:
                quarantine(account, state, conflict(
                    slot, held[0], f"reported by node {held[1]}", value, source), out)
                return
        state.known_tail = max(state.known_tail, slot)
        return
    commit(account, state, slot, value, out, chosen_under=None, source=source)
    while state.quarantined is None and state.chosen_through + 1 in state.learned:
        following = state.chosen_through + 1
        held_value, held_source = state.learned[following]
        commit(account, state, following, held_value, out, chosen_under=None,
               source=held_source)


def commit(
    account: str, state: AccountState, slot: int, value: bytes, out: ReadyBuilder,
    chosen_under: Ballot | None, source: int,
) -> None:
    """Extend the chosen prefix by one slot (`source` says it is chosen: a peer, or this
    node when its own accepts chose it).

    `chosen_under` is our ballot when our own accepts chose the value; then a
    leadership under that ballot carries on to the next slot.
    """
    # The callers commit only the next slot (an internal invariant, no input reaches it).
    assert slot == state.chosen_through + 1
    held = state.learned.pop(slot, None)
    if held is not None and held[0] != value:
        quarantine(account, state, conflict(
            slot, held[0], f"reported by node {held[1]}", value, source), out)
        return
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
    # A proposal is made only at the next undecided slot, and dropped when it is decided.
    assert state.proposer is None or state.proposer.slot > slot


def chosen_value(account: str, slot: int, store: DurableView, out: ReadyBuilder) -> bytes:
    """The value chosen at a slot of the prefix: committed in this step, or stored."""
    for committed in reversed(out.committed):  # not staged until the step is carried out
        if committed.slot == slot and committed.account == account:
            return committed.value
    (value,) = store.chosen_values(account, slot, 1)
    return value


def conflict(slot: int, known: bytes, known_how: str, reported: bytes, source: int) -> str:
    return (f"two values for slot {slot}: {shown(known)} ({known_how}) and {shown(reported)} "
            f"(reported by node {source})")


def shown(value: bytes) -> str:
    head = value[:SHOWN_BYTES].hex()
    return f"{len(value)} bytes {head}{'...' if len(value) > SHOWN_BYTES else ''}"


def quarantine(account: str, state: AccountState, reason: str, out: ReadyBuilder) -> None:
    """Stop acting on the account here: no proposing, learning or reading; raise an alarm.

    What the node has made durable stays as it is; its own proposal (if any) gets no
    outcome (the driver fails it), and nothing more is committed on the account.
    """
    state.quarantined = reason
    state.proposer = None
    state.leader = None
    state.learned.clear()
    state.barriers.clear()
    state.catch_up_at_ms = None
    state.recovery_at_ms = None
    out.alarms.append(Alarm(account, reason))
