"""A node's own trace of the Paxos messages for a few accounts, for people to read."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass

from ledger.paxos import messages as m
from ledger.paxos.account import Leadership

MAX_EVENTS_PER_ACCOUNT = 2_000
MAX_TRACED_ACCOUNTS = 16


@dataclass(frozen=True, slots=True)
class TraceEvent:
    at_ms: int
    direction: str  # "sent", "received" or "note"
    peer: int | None
    text: str
    kind: str = ""  # the message's kind ("Accept"), for drawing; "" for a note
    slot: int = -1  # the slot it is about (a Prepare's first slot); -1: none
    ballot: str = ""  # the ballot it carries, as "round.node"; "" if none


def message_fields(message: m.Message) -> tuple[str, int, str]:
    """The message's kind, its slot (-1 if none) and its ballot ("" if none)."""
    slot = getattr(message, "slot", getattr(message, "from_slot", -1))
    ballot = getattr(message, "ballot", None)
    return type(message).__name__, slot, "" if ballot is None else str(ballot)


def describe(message: m.Message) -> str:
    """One line a person can follow: the message kind with its slot and ballot."""
    if isinstance(message, m.Prepare):
        return f"Prepare(slots >= {message.from_slot}, ballot {message.ballot})"
    if isinstance(message, m.Promise):
        votes = ", ".join(f"{v.slot}@{v.ballot}" for v in message.accepted) or "none"
        known = f", knows {len(message.chosen)} chosen" if message.chosen else ""
        return (f"Promise(ballot {message.ballot} for slots >= {message.from_slot}, "
                f"earlier votes: {votes}{known})")
    if isinstance(message, m.Accept):
        return f"Accept(slot {message.slot}, ballot {message.ballot})"
    if isinstance(message, m.Accepted):
        return f"Accepted(slot {message.slot}, ballot {message.ballot})"
    if isinstance(message, m.Nack):
        return (f"Nack(slot {message.slot}, ballot {message.ballot}: "
                f"promised {message.promised})")
    if isinstance(message, m.Learn):
        return f"Learn(slot {message.slot} is chosen)"
    if isinstance(message, m.CatchUpRequest):
        return f"CatchUpRequest(from slot {message.from_slot})"
    if isinstance(message, m.CatchUpReply):
        return (f"CatchUpReply({len(message.values)} values from slot "
                f"{message.from_slot})")
    if isinstance(message, m.TailQuery):
        return f"TailQuery(read barrier {message.nonce})"
    if isinstance(message, m.TailReport):
        return (f"TailReport(chosen through {message.chosen_through}, "
                f"highest vote {message.highest_vote})")
    return type(message).__name__


class Tracer:
    """Keeps recent events for the accounts someone asked to trace (a bounded few)."""

    def __init__(self) -> None:
        self._events: dict[str, deque[TraceEvent]] = {}

    @property
    def active(self) -> bool:
        return bool(self._events)

    def start(self, account: str) -> None:
        """Trace the account from now on (kept as it is if it is traced already, so a
        watcher may say "start" on every look without losing what was recorded)."""
        if account in self._events:
            return
        if len(self._events) >= MAX_TRACED_ACCOUNTS:
            self._events.pop(next(iter(self._events)))
        self._events[account] = deque(maxlen=MAX_EVENTS_PER_ACCOUNT)

    def stop(self, account: str) -> list[TraceEvent]:
        return list(self._events.pop(account, ()))

    def events(self, account: str) -> list[TraceEvent]:
        return list(self._events.get(account, ()))

    def record(self, direction: str, peer: int, message: m.Message) -> None:
        account = getattr(message, "account", None)
        events = self._events.get(account) if account is not None else None
        if events is not None:
            events.append(TraceEvent(time.time_ns() // 1_000_000, direction, peer,
                                     describe(message), *message_fields(message)))

    def note(self, account: str, text: str) -> None:
        events = self._events.get(account)
        if events is not None:
            events.append(TraceEvent(time.time_ns() // 1_000_000, "note", None, text))

    def note_proposal(self, account: str, slot: int, leader: Leadership | None) -> None:
        """Say whether a proposal at `slot` skips Phase 1 (a range promise covers it)."""
        if leader is not None and leader.next_slot == slot:
            self.note(account, (
                f"proposing at slot {slot} on the fast path: a majority promised "
                f"ballot {leader.ballot} for every slot >= {leader.since_slot}, so "
                "Prepare/Promise are skipped"))
        else:
            self.note(account, (
                f"proposing at slot {slot}: this node holds no range promise on the "
                "account, so Phase 1 (Prepare/Promise) runs first"))
