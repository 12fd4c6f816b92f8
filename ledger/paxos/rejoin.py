"""Rejoining after a lost, rolled-back or untrusted disk: what `ledger recover` must learn
and what the node must write before it takes part in Paxos again.

A node that forgot promises or votes can let two values be chosen in one slot. So
a rejoining node first makes a new incarnation known to *every* other member; each
one records it, refuses anything from the former life from then on, and forgets
everything it had counted from it (`PaxosNode.forget_peer`). Only then does it
report (a) the highest round it promised or accepted and (b) per account the
highest slot where it holds a vote or a chosen value. From all of those reports:

- floor F = the highest round reported, where each member reports the highest
  round it promised, accepted or used as a proposer (its reserved round). The node
  never promises, accepts or proposes at a round <= F. A ballot that counted a
  promise of the former life is the proposer's own, and its Phase 1 finished before
  that proposer forgot the promise, so before it reported: its reserved round, and
  so F, covers the ballot.
- fence H(account) = the highest slot reported. The node votes (or promises for
  a range reaching it) at an undecided slot <= H only after it has learned the
  value chosen there. A value chosen with a vote of the former life was chosen
  before the member counting that vote forgot it, so the rest of its quorum had
  voted before reporting, and H covers the slot. Above H no vote of the former
  life counts any more (every member refuses and has forgotten it), so the node
  is a fresh acceptor there, above F.

Why every member and not a majority: a member that has not yet heard of the new
incarnation (paused, or cut off) may still hold a message of the former life in
flight, or counted in a tally it has not finished, and finish a quorum with it
after the node voted anew under a promise that forgot it. (This is the argument;
the simulator's schedules have not produced such a case for a majority-only
variant, so it is not a test.) Members that lost their own disk and are
rejoining too answer from what they hold: with at most a minority of them, the
healthy reports alone intersect every quorum.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from ledger.paxos.records import FenceWrite, FloorWrite, Write


@dataclass(frozen=True, slots=True)
class RejoinReport:
    """What one other member reported, after recording the new incarnation and forgetting
    the former one: its highest round, and per account its highest voted or chosen slot."""

    node: int
    max_round: int
    highest_slots: Mapping[str, int]


@dataclass(slots=True)
class Rejoin:
    """Gathers the reports of every member but `node_index`; then says what to write."""

    node_index: int
    cluster_size: int
    reports: dict[int, RejoinReport] = field(default_factory=dict)

    def missing(self) -> list[int]:
        """The members that have not reported yet."""
        return [n for n in range(self.cluster_size)
                if n != self.node_index and n not in self.reports]

    def on_report(self, report: RejoinReport) -> None:
        if report.node == self.node_index or not 0 <= report.node < self.cluster_size:
            raise ValueError(f"node {report.node} cannot report to node {self.node_index}")
        self.reports[report.node] = report

    @property
    def complete(self) -> bool:
        return not self.missing()

    def writes(self, kept_chosen_through: Mapping[str, int]) -> list[Write]:
        """The floor and the fences, once every other member reported.

        `kept_chosen_through` is how far the node's own chosen prefix of each account
        reaches (values it kept and verified): a fence at or below it changes nothing.
        """
        if not self.complete:
            raise ValueError(f"members {self.missing()} have not reported yet")
        return recovery_writes(self.reports.values(), kept_chosen_through)


def recovery_writes(
    reports: Iterable[RejoinReport], kept_chosen_through: Mapping[str, int]
) -> list[Write]:
    """The floor above every reported round, and a fence at each account's highest slot."""
    floor = 0
    fences: dict[str, int] = {}
    for report in reports:
        floor = max(floor, report.max_round)
        for account, slot in report.highest_slots.items():
            if slot > fences.get(account, -1):
                fences[account] = slot
    writes: list[Write] = [FloorWrite(floor)]
    writes.extend(FenceWrite(account, slot) for account, slot in sorted(fences.items())
                  if slot > kept_chosen_through.get(account, -1))
    return writes
