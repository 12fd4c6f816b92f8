"""A node's trace of a few accounts' Paxos messages (Admin.Trace, the dashboard's
diagrams): bounded, structured, and kept when a watcher says "start" again."""

from __future__ import annotations

from ledger.node.trace import MAX_TRACED_ACCOUNTS, Tracer
from ledger.paxos import Accept, Learn, Prepare
from ledger.paxos.ballot import Ballot


def test_events_carry_the_kind_slot_and_ballot_of_their_message() -> None:
    tracer = Tracer()
    tracer.start("a")
    tracer.record("sent", 1, Prepare("a", 4, Ballot(7, 0)))
    tracer.record("sent", 2, Accept("a", 4, Ballot(7, 0), b"v"))
    tracer.record("received", 2, Learn("a", 4, b"v"))
    tracer.record("sent", 1, Learn("other", 0, b"v"))  # not traced: not kept
    assert [(e.kind, e.slot, e.ballot, e.peer) for e in tracer.events("a")] == [
        ("Prepare", 4, "7.0", 1), ("Accept", 4, "7.0", 2), ("Learn", 4, "", 2)]


def test_starting_again_keeps_what_was_recorded() -> None:
    tracer = Tracer()
    tracer.start("a")
    tracer.record("sent", 1, Learn("a", 0, b"v"))
    tracer.start("a")
    assert len(tracer.events("a")) == 1
    assert len(tracer.stop("a")) == 1 and tracer.events("a") == []


def test_only_the_latest_accounts_are_traced() -> None:
    tracer = Tracer()
    for number in range(MAX_TRACED_ACCOUNTS + 1):
        tracer.start(f"a{number}")
    tracer.record("sent", 1, Learn("a0", 0, b"v"))  # the oldest went for the newest
    tracer.record("sent", 1, Learn(f"a{MAX_TRACED_ACCOUNTS}", 0, b"v"))
    assert tracer.events("a0") == []
    assert len(tracer.events(f"a{MAX_TRACED_ACCOUNTS}")) == 1
