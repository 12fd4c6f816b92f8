"""How much work a node did since it started: for operators (`ledger status`) and benchmarks."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(slots=True)
class DriverCounters:
    turns: int = 0
    syncs: int = 0
    messages: int = 0  # handled by the core
    proposals: int = 0
    applied: int = 0  # log entries applied since start (not counting startup's re-apply)
    last_flush_ms: int = 0  # how long the last flush took
    alarms: int = 0  # accounts quarantined on an alarm
    unreadable_accounts: int = 0  # accounts quarantined now because a record is damaged
    repaired_values: int = 0  # damaged chosen values put back from a peer's copy
    received: Counter[str] = field(default_factory=Counter)  # messages handled, by kind
    # Counters of the parts around the driver (transport, bank), merged into the view.
    extra: Callable[[], dict[str, int]] = dict

    def as_dict(self) -> dict[str, int]:
        return {"turns": self.turns, "syncs": self.syncs, "messages": self.messages,
                "proposals": self.proposals, "applied": self.applied, "alarms": self.alarms,
                "unreadable_accounts": self.unreadable_accounts,
                "repaired_values": self.repaired_values,
                **self.extra(),
                **{f"received_{kind}": count for kind, count in self.received.items()}}
