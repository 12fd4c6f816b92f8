"""What reaches the driver between turns, and what one turn produced."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from ledger.node.proposals import Proposal
from ledger.node.reads import Read
from ledger.paxos import Envelope, Ready


@dataclass(slots=True, eq=False)
class Call:
    """A peer's call, waiting for the answers its messages cause."""

    source: int
    envelopes: list[Envelope]
    future: asyncio.Future[list[Envelope]]


@dataclass(slots=True)
class Turn:
    """What one turn produced: released once the writes it depends on are durable."""

    readies: list[Ready]
    calls: list[Call]


@dataclass(slots=True)
class Inbox:
    calls: list[Call] = field(default_factory=list)
    messages: list[Envelope] = field(default_factory=list)
    cancels: list[Proposal] = field(default_factory=list)
    reads: list[Read] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.calls or self.messages or self.cancels or self.reads)

    def __len__(self) -> int:
        return len(self.calls) + len(self.messages) + len(self.reads)

    def drop_from(self, peer: int) -> None:
        """Drop what node `peer` sent and nobody handled yet; its calls get no answers."""
        for call in self.calls:
            if call.source == peer and not call.future.done():
                call.future.set_result([])
        self.calls = [call for call in self.calls if call.source != peer]
        self.messages = [e for e in self.messages if e.source != peer]
