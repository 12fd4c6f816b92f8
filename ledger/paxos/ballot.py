"""Ballots: totally ordered proposal numbers that no two nodes ever share."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True, slots=True)
class Ballot:
    """A proposal number `(round, node_index)`.

    Rounds order ballots; the node index (the rank of the node's id among the
    sorted cluster ids) breaks ties, so ballots from different nodes never
    collide. Round 0 belongs to the null ballot alone.
    """

    round: int
    node_index: int

    def __post_init__(self) -> None:
        # Explicit raises, not asserts: ballots are decoded from peers and from disk.
        if self.round < 0 or self.node_index < -1:
            raise ValueError(f"ballot {self.round}.{self.node_index}: negative round or index")
        if (self.round == 0) != (self.node_index == -1):
            raise ValueError(f"ballot {self.round}.{self.node_index}: only the null ballot "
                             "has round 0 (and node index -1)")

    def __str__(self) -> str:
        return f"{self.round}.{self.node_index}"


#: Below every real ballot: what an acceptor has promised before its first Prepare.
NULL_BALLOT = Ballot(0, -1)

#: No ballot's round goes past this: peers refuse messages above it, and a node whose
#: next round would pass it stops proposing on that account (it cannot out-ballot).
MAX_ROUND = 1 << 62
