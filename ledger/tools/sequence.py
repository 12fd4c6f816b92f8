"""Paxos messages as a sequence diagram: the nodes' own traces (Admin.Trace), arranged
for people who know Paxos from a tutorial's pictures.

Each node records what it sends (to its peers and to its own acceptor) and notes
such as "proposing on the fast path". One arrow per message sent, in time order
(the nodes' wall clocks: on one machine they agree; across machines they may be off
by their skew), and per slot a sentence that says how it was decided.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

from ledger.v1 import replica_pb2 as pb

#: What each message does in the protocol, in a tutorial's words.
ROLES = {
    "Prepare": "Phase 1a: a proposer asks for a promise under its ballot",
    "Promise": "Phase 1b: an acceptor promises, reporting any earlier votes",
    "Accept": "Phase 2a: the proposer asks the acceptors to vote for a value",
    "Accepted": "Phase 2b: an acceptor votes for the value",
    "Nack": "refused: the acceptor promised a higher ballot",
    "Learn": "the value is chosen (a majority voted): learners apply it",
    "CatchUpRequest": "a node that missed slots asks for the chosen values",
    "CatchUpReply": "the chosen values a node missed",
    "TailQuery": "read barrier: how far is your log chosen?",
    "TailReport": "read barrier: this far",
}
MAX_ARROWS = 400  # a diagram shows at most the latest this many messages


@dataclass(frozen=True, slots=True)
class Arrow:
    at_ms: int
    source: str  # node id
    target: str  # node id (the same for a node's message to its own acceptor)
    kind: str
    slot: int
    ballot: str
    label: str  # e.g. "Accept slot 3, ballot 7.0"
    fast: bool  # a Phase 2 message of a proposal that skipped Phase 1 (the fast path)


@dataclass(frozen=True, slots=True)
class Note:
    at_ms: int
    node: str
    text: str


@dataclass(frozen=True, slots=True)
class Diagram:
    title: str
    nodes: list[str]
    arrows: list[Arrow]
    notes: list[Note]
    summary: list[str]  # per slot, how it was decided

    def as_json(self) -> dict[str, object]:
        return {"title": self.title, "nodes": self.nodes,
                "arrows": [asdict(a) for a in self.arrows],
                "notes": [asdict(n) for n in self.notes], "summary": self.summary,
                "roles": ROLES}


def diagram(title: str, nodes: Sequence[str], events: Iterable[pb.TraceEvent],
            start_ms: int = 0, end_ms: int = 1 << 62) -> Diagram:
    """The messages the nodes sent between `start_ms` and `end_ms` (their notes too)."""
    chosen = sorted((e for e in events if start_ms <= e.at_ms <= end_ms),
                    key=lambda e: (e.at_ms, e.node_id))
    notes = [Note(e.at_ms, e.node_id, e.text) for e in chosen if e.direction == "note"]
    sent = [e for e in chosen if e.direction == "sent" and e.kind][-MAX_ARROWS:]
    prepared = {(e.node_id, e.slot) for e in sent if e.kind == "Prepare"}
    # A vote answers the proposer's ballot: its proposal went fast if that proposer
    # sent no Prepare for the slot here (ballot "r.n" names the proposer n).
    proposer_of = {e.ballot: e.node_id for e in sent if e.kind == "Accept"}
    arrows = []
    for e in sent:
        proposer = e.node_id if e.kind == "Accept" else proposer_of.get(e.ballot)
        fast = e.kind in ("Accept", "Accepted") and proposer is not None and \
            (proposer, e.slot) not in prepared
        arrows.append(Arrow(e.at_ms, e.node_id, e.peer_id or e.node_id, e.kind, e.slot,
                            e.ballot, _label(e), fast))
    return Diagram(title, list(nodes), arrows, notes, summarize(arrows, len(nodes)))


def _label(event: pb.TraceEvent) -> str:
    slot = f" slot {event.slot}" if event.slot >= 0 else ""
    ballot = f", ballot {event.ballot}" if event.ballot else ""
    return f"{event.kind}{slot}{ballot}"


def summarize(arrows: Sequence[Arrow], cluster_size: int) -> list[str]:
    """Per slot a proposal was made for: who proposed, how, who voted, whether chosen."""
    lines = []
    for slot in sorted({a.slot for a in arrows if a.kind == "Accept"}):
        accepts = [a for a in arrows if a.kind == "Accept" and a.slot == slot]
        proposer, ballot = accepts[-1].source, accepts[-1].ballot
        phase_one = any(a.kind == "Prepare" and a.source == proposer and a.slot == slot
                        for a in arrows)
        voters = sorted({a.source for a in arrows if a.kind == "Accepted" and a.slot == slot
                         and a.ballot == ballot})
        learned = sorted({a.target for a in arrows if a.kind == "Learn" and a.slot == slot})
        how = ("after Phase 1 (Prepare, then Promises from a majority)" if phase_one else
               "on the fast path (its range promise made Phase 1 unnecessary)")
        majority = cluster_size // 2 + 1
        decided = (f"chosen once {majority} of {cluster_size} had voted; "
                   f"Learn told {', '.join(learned)}" if learned else
                   f"{len(voters)} of {cluster_size} voted so far")
        lines.append(f"slot {slot}: {proposer} proposed under ballot {ballot} {how}; "
                     f"voted for by {', '.join(voters) or 'nobody yet'}; {decided}")
    return lines
