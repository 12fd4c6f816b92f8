"""The simulator's safety checker: an omniscient observer of every durable vote.

A value is chosen at (account, slot) as soon as a majority of acceptors
have durably voted for it under one ballot, whether or not anybody noticed.
The checker holds the cluster to:

- agreement: never two different values chosen, or learned, at one slot;
- validity: every chosen value was proposed by a client;
- ballot uniqueness: never two values voted under one ballot at one slot;
- persistence order: no Promise or Accepted leaves a node before the state it
  reports is durable at its sender, and no ballot leaves before its round is.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from ledger.paxos.ballot import Ballot
from ledger.paxos.messages import Accept, Accepted, Envelope, Prepare, Promise
from ledger.storage.memory import MemoryTables

Slot = tuple[str, int]  # (account, slot)


@dataclass(slots=True)
class SafetyChecker:
    cluster_size: int
    violations: list[str] = field(default_factory=list)
    proposed: set[bytes] = field(default_factory=set)
    chosen: dict[Slot, bytes] = field(default_factory=dict)
    # slot -> ballot -> value -> acceptors that durably voted for it
    votes: dict[Slot, dict[Ballot, dict[bytes, set[int]]]] = field(
        default_factory=lambda: defaultdict(dict)
    )
    learned: dict[Slot, bytes] = field(default_factory=dict)

    @property
    def quorum(self) -> int:
        return self.cluster_size // 2 + 1

    def violation(self, now_ms: int, text: str) -> None:
        self.violations.append(f"t={now_ms}ms: {text}")

    def on_propose(self, value: bytes) -> None:
        self.proposed.add(value)

    def on_durable_vote(
        self, now_ms: int, node: int, account: str, slot: int, ballot: Ballot, value: bytes
    ) -> None:
        slot = (account, slot)
        by_value = self.votes[slot].setdefault(ballot, {})
        if by_value and value not in by_value:
            self.violation(now_ms, f"ballot {ballot} carries two values at {slot}")
        voters = by_value.setdefault(value, set())
        voters.add(node)
        if len(voters) >= self.quorum:
            self._chosen(now_ms, slot, value)

    def _chosen(self, now_ms: int, slot: Slot, value: bytes) -> None:
        earlier = self.chosen.setdefault(slot, value)
        if earlier != value:
            self.violation(now_ms, f"agreement: {slot} chose {earlier!r} and {value!r}")
        if value not in self.proposed:
            self.violation(now_ms, f"validity: {slot} chose {value!r}, which nobody proposed")

    def on_learned(self, now_ms: int, node: int, account: str, slot: int, value: bytes) -> None:
        slot = (account, slot)
        chosen = self.chosen.get(slot)
        if chosen is None:
            self.violation(now_ms, f"node {node} learned {value!r} at {slot}, never chosen")
        elif chosen != value:
            self.violation(
                now_ms, f"agreement: node {node} learned {value!r} at {slot}, chosen {chosen!r}"
            )
        earlier = self.learned.setdefault(slot, value)
        if earlier != value:
            self.violation(now_ms, f"agreement: {slot} learned as {earlier!r} and {value!r}")

    def on_send(self, now_ms: int, envelope: Envelope, sender_durable: MemoryTables) -> None:
        """Check the sender has made durable what the message claims, before it leaves."""
        message = envelope.message
        sender = envelope.source
        if isinstance(message, Promise):
            promised = sender_durable.account_record(message.account).promised
            if promised < message.ballot:
                self.violation(
                    now_ms,
                    f"persistence order: node {sender} promised {message.ballot} on "
                    f"{message.account} but its disk holds {promised}",
                )
        elif isinstance(message, Accepted):
            record = sender_durable.account_record(message.account)
            vote = next((v for v in record.accepted if v.slot == message.slot), None)
            durable = record.chosen_through >= message.slot or (
                vote is not None and vote.ballot >= message.ballot
            )
            if not durable:
                self.violation(
                    now_ms,
                    f"persistence order: node {sender} accepted {message.ballot} at "
                    f"{message.account}/{message.slot} but its disk does not hold the vote",
                )
        elif (
            isinstance(message, (Prepare, Accept))
            and message.ballot.round > sender_durable.reserved_round()
        ):
            self.violation(
                now_ms,
                f"persistence order: node {sender} sent round {message.ballot.round} "
                f"with only {sender_durable.reserved_round()} durable",
            )
