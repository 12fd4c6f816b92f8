"""The result of one step of the core: what to persist, then send, then apply."""

from __future__ import annotations

from dataclasses import dataclass, field

from ledger.paxos.messages import Envelope, Message
from ledger.paxos.records import AcceptWrite, PromiseWrite, RoundWrite, Write

#: Writes that what a node says depends on; the rest may trail its messages.
GATING_WRITES = (PromiseWrite, AcceptWrite, RoundWrite)


@dataclass(frozen=True, slots=True)
class Committed:
    """`value` is chosen at `slot`; slots arrive in order per account."""

    account: str
    slot: int
    value: bytes


@dataclass(frozen=True, slots=True)
class Outcome:
    """The end of a proposal this node made at `slot` with value `proposed`."""

    account: str
    slot: int
    chosen: bytes
    proposed: bytes

    @property
    def won(self) -> bool:
        """True when the proposed value is the one chosen at `slot`."""
        return self.chosen == self.proposed


@dataclass(frozen=True, slots=True)
class BarrierDone:
    """Read barrier `nonce` on `account` passed: slots 0..`slot` are chosen and
    committed here, and no write decided before the barrier began lies beyond them."""

    account: str
    nonce: int
    slot: int


@dataclass(frozen=True, slots=True)
class Alarm:
    """Something a correct cluster never does happened on `account`; it is quarantined
    on this node (no proposals, reads or learning there) until an operator looks."""

    account: str
    reason: str


@dataclass(frozen=True, slots=True)
class Ready:
    """One step's effects, to be carried out strictly in this order.

    1. `writes` are staged (visible to the core's next read) at once;
    2. `messages` may be sent once every *promise, vote and round* staged so far
       (by this Ready or an earlier one) is durable: those are what a Promise or an
       Accepted vouches for. A ChosenWrite gates nothing: a value is chosen because
       a majority durably voted for it, so telling or applying it needs no fsync of
       ours; losing it in a crash only means learning it again;
    3. then `committed` entries are applied, then `outcomes` and `barriers` reported.

    `alarms` are reported at once: they need no durability and gate nothing.
    """

    writes: tuple[Write, ...] = ()
    messages: tuple[Envelope, ...] = ()
    committed: tuple[Committed, ...] = ()
    outcomes: tuple[Outcome, ...] = ()
    barriers: tuple[BarrierDone, ...] = ()
    alarms: tuple[Alarm, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.writes or self.messages or self.committed or self.outcomes
                    or self.barriers or self.alarms)

    @property
    def gates_sends(self) -> bool:
        """Must these writes be durable before any message leaves?"""
        return any(isinstance(write, GATING_WRITES) for write in self.writes)


@dataclass(slots=True)
class ReadyBuilder:
    """Collects one step's effects; the node turns it into a frozen Ready."""

    writes: list[Write] = field(default_factory=list)
    messages: list[Envelope] = field(default_factory=list)
    committed: list[Committed] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)
    barriers: list[BarrierDone] = field(default_factory=list)
    alarms: list[Alarm] = field(default_factory=list)

    def broadcast(self, source: int, cluster_size: int, message: Message) -> None:
        """Send `message` to every node of the cluster, `source` included."""
        for node in range(cluster_size):
            self.messages.append(Envelope(source, node, message))

    def build(self) -> Ready:
        return Ready(
            tuple(self.writes), tuple(self.messages), tuple(self.committed),
            tuple(self.outcomes), tuple(self.barriers), tuple(self.alarms),
        )
