"""The learner role for one account: extend the chosen prefix, one slot at a time.

A value learned beyond a gap is held (up to a bound) until the slots before it
are chosen too. Every value reaching a slot twice must be the same value: the
checks raise `AgreementViolation` explicitly, so they hold under `python -O`.
"""

from __future__ import annotations

from ledger.paxos.account import AccountState
from ledger.paxos.ballot import Ballot
from ledger.paxos.errors import AgreementViolation
from ledger.paxos.ready import Committed, Outcome, ReadyBuilder
from ledger.paxos.records import ChosenWrite


def learn(
    account: str, state: AccountState, slot: int, value: bytes, learn_ahead_limit: int,
    out: ReadyBuilder,
) -> None:
    """`value` is chosen at `slot`: commit it, or hold it until the gap fills."""
    if slot <= state.chosen_through:
        return
    if slot > state.chosen_through + 1:
        if slot - state.chosen_through <= learn_ahead_limit:
            held = state.learned.setdefault(slot, value)
            if held != value:
                raise AgreementViolation(f"agreement: two values learned at {account}/{slot}")
        state.known_tail = max(state.known_tail, slot)
        return
    commit(account, state, slot, value, out, chosen_under=None)
    while state.chosen_through + 1 in state.learned:
        following = state.chosen_through + 1
        commit(account, state, following, state.learned.pop(following), out, chosen_under=None)


def commit(
    account: str, state: AccountState, slot: int, value: bytes, out: ReadyBuilder,
    chosen_under: Ballot | None,
) -> None:
    """Extend the chosen prefix by one slot.

    `chosen_under` is our ballot when our own accepts chose the value; then a
    leadership under that ballot carries on to the next slot.
    """
    # The callers commit only the next slot (an internal invariant, no input reaches it).
    assert slot == state.chosen_through + 1
    held = state.learned.pop(slot, None)
    if held is not None and held != value:
        raise AgreementViolation(f"agreement: two values at {account}/{slot}")
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
