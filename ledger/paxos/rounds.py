"""The rounds of one node's ballots: above every round seen, never reused after a restart.

Rounds are reserved in blocks: a `RoundWrite` makes the end of a block durable
before any message carrying a round of it leaves (the Ready order), so a
restarted node resumes above every round its previous life may have used.
"""

from __future__ import annotations

from ledger.paxos.ballot import MAX_ROUND, Ballot
from ledger.paxos.errors import RoundsExhausted
from ledger.paxos.records import RoundWrite, Write

#: How far past its own rounds a node follows a round it saw: honest contention moves
#: rounds by ones; a round beyond this comes from a broken member.
MAX_ROUND_JUMP = 1 << 32


class Rounds:
    """Issues the node's ballots and counts the Phase 1 rounds it has begun."""

    __slots__ = ("_node_index", "_reservation", "_reserved", "_round", "prepare_seq")

    def __init__(self, node_index: int, restored_round: int, reservation: int) -> None:
        self._node_index = node_index
        self._reservation = reservation
        self._round = restored_round  # the highest round this node may have used
        self._reserved = restored_round  # rounds up to this one are durably reserved
        # Phase 1 rounds begun in this incarnation: a read barrier trusts only a round
        # that began after it knew its target to prove the log ends before it.
        self.prepare_seq = 0

    def next_ballot(self, max_seen_round: int, writes: list[Write]) -> Ballot:
        """A ballot above `max_seen_round` and every round this node ever used.

        Appends a RoundWrite to `writes` when the ballot needs a new reservation.
        Raises RoundsExhausted (and uses no round) when that would pass MAX_ROUND.
        """
        if max_seen_round > self._round + MAX_ROUND_JUMP:
            # No honest cluster gets there: following it would push every account's
            # ballots (the counter is the node's) towards the end of the round space.
            raise RoundsExhausted(
                f"a peer used round {max_seen_round}, more than {MAX_ROUND_JUMP} past this "
                f"node's round {self._round}: refusing to follow it")
        round_ = max(self._round, max_seen_round) + 1
        if round_ > MAX_ROUND:
            raise RoundsExhausted(f"the next round, {round_}, would pass {MAX_ROUND}")
        self._round = round_
        if self._round > self._reserved:
            # Durable before any message carrying the round leaves (Ready order).
            self._reserved = self._round + self._reservation
            writes.append(RoundWrite(self._reserved))
        return Ballot(self._round, self._node_index)
