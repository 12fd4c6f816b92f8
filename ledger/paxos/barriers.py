"""Read barriers: a read waits until every write decided before it began is committed here.

A barrier asks every node how far its chosen prefix and its votes on the account
reach (TailQuery, answered by a TailReport). Once a majority answered, the
highest slot any of them named is the barrier's target: every write decided
before the barrier began is at or below it. The node then catches up to the
target, settling slots there that nobody decides, and the barrier passes
(`BarrierDone`) once the target is committed here, or once a settle that began
after the target was known finds the log ends before it.

Pure functions over an account's barriers; the node supplies the clock and sends.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ledger.paxos.messages import Envelope, TailQuery, TailReport
from ledger.paxos.ready import BarrierDone, ReadyBuilder


@dataclass(slots=True)
class Barrier:
    """One read-barrier round: which slots must be settled before a read may answer.

    `target` is the highest slot a majority reports a chosen value or a vote at;
    every write decided before the round began is at or below it.
    """

    nonce: int
    deadline_ms: int  # resend queries, or settle what is still undecided
    reports: dict[int, TailReport] = field(default_factory=dict)
    target: int | None = None
    prepare_seq: int = 0  # prepares begun before the target was known prove nothing


def begin(
    barriers: dict[int, Barrier], account: str, nonce: int, now_ms: int, resend_ms: int,
    node_index: int, cluster_size: int, out: ReadyBuilder,
) -> None:
    """Start barrier `nonce`: ask every node (this one too) how far the account reaches."""
    barriers[nonce] = Barrier(nonce, now_ms + resend_ms)
    out.broadcast(node_index, cluster_size, TailQuery(account, nonce))


def answer(query: TailQuery, chosen_through: int, highest_slot: int) -> TailReport:
    """What this node tells a barrier: its chosen prefix and the highest slot it knows of."""
    return TailReport(query.account, query.nonce, chosen_through, highest_slot)


def on_report(
    barriers: dict[int, Barrier], source: int, report: TailReport, quorum: int,
    prepare_seq: int, now_ms: int, settle_ms: int,
) -> None:
    """Record a node's report; with a majority, fix the barrier's target.

    `prepare_seq` is the node's count of prepares begun so far: only a later one
    can prove the log ends before the target.
    """
    barrier = barriers.get(report.nonce)
    if barrier is None or barrier.target is not None:
        return
    barrier.reports[source] = report
    if len(barrier.reports) >= quorum:
        barrier.target = max(max(r.chosen_through, r.highest_vote)
                             for r in barrier.reports.values())
        barrier.prepare_seq = prepare_seq
        # Give votes in flight a moment to be learned before settling them ourselves.
        barrier.deadline_ms = now_ms + settle_ms


def complete(
    barriers: dict[int, Barrier], account: str, chosen_through: int, out: ReadyBuilder,
    log_end_seq: int = 0,
) -> None:
    """Pass every barrier whose target is committed here, or proven past the log's end.

    `log_end_seq` is the `prepare_seq` of a settle that just found no vote in a
    majority at its slot (0: none did).
    """
    for nonce, barrier in list(barriers.items()):
        target = barrier.target
        if target is None:
            continue
        if chosen_through >= target or barrier.prepare_seq < log_end_seq:
            del barriers[nonce]
            out.barriers.append(BarrierDone(account, nonce, chosen_through))


def on_timer(
    barrier: Barrier, account: str, now_ms: int, resend_ms: int, node_index: int,
    cluster_size: int, out: ReadyBuilder,
) -> int | None:
    """Barrier `barrier` is due: ask again the nodes that did not answer.

    Returns its target once known: slots up to it that are still undecided are
    then for the node to settle (when no proposal of its own is in flight).
    """
    barrier.deadline_ms = now_ms + resend_ms
    if barrier.target is None:
        query = TailQuery(account, barrier.nonce)
        for node in range(cluster_size):
            if node not in barrier.reports:
                out.messages.append(Envelope(node_index, node, query))
    return barrier.target
