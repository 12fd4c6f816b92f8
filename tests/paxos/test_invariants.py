"""Invariant checks an input can reach raise named exceptions, under `python -O` too."""

from __future__ import annotations

import pathlib
import random
import subprocess
import sys
from dataclasses import dataclass

import pytest

from ledger.paxos import (
    AgreementViolation,
    Envelope,
    InvariantViolation,
    Learn,
    PaxosConfig,
    PaxosNode,
    learner,
)
from ledger.paxos.acceptor import AcceptorState
from ledger.paxos.account import AccountState
from ledger.paxos.ballot import NULL_BALLOT
from ledger.paxos.ready import ReadyBuilder
from ledger.storage.memory import MemoryStore

ROOT = pathlib.Path(__file__).resolve().parent.parent.parent


def new_node(index: int = 0) -> PaxosNode:
    return PaxosNode(index, PaxosConfig(cluster_size=3), MemoryStore(), random.Random(0), 0)


def test_the_exceptions_are_assertion_errors_the_simulator_records() -> None:
    assert issubclass(AgreementViolation, InvariantViolation)
    assert issubclass(InvariantViolation, AssertionError)


def test_two_values_learned_beyond_a_gap_break_agreement() -> None:
    node = new_node()
    node.handle(Envelope(1, 0, Learn("alice", 2, b"one")), 0)
    node.handle(Envelope(1, 0, Learn("alice", 2, b"one")), 0)  # a duplicate is fine
    with pytest.raises(AgreementViolation, match="two values learned at alice/2"):
        node.handle(Envelope(2, 0, Learn("alice", 2, b"two")), 0)


def test_committing_another_value_than_one_held_breaks_agreement() -> None:
    state = AccountState(AcceptorState(NULL_BALLOT), chosen_through=-1, known_tail=0,
                         last_activity_ms=0, learned={0: b"held"})
    with pytest.raises(AgreementViolation, match="two values at alice/0"):
        learner.commit("alice", state, 0, b"other", ReadyBuilder(), chosen_under=None)


def test_an_envelope_for_another_node_is_refused() -> None:
    with pytest.raises(InvariantViolation, match="for node 1"):
        new_node(0).handle(Envelope(2, 1, Learn("alice", 0, b"v")), 0)


@dataclass(frozen=True)
class Stranger:
    account: str


def test_a_message_of_no_known_kind_is_refused() -> None:
    with pytest.raises(InvariantViolation, match="not a Paxos message"):
        new_node().handle(Envelope(1, 0, Stranger("alice")), 0)  # type: ignore[arg-type]


def test_a_node_index_outside_the_cluster_is_refused() -> None:
    with pytest.raises(InvariantViolation, match="outside a cluster of 3"):
        new_node(3)


OPTIMISED_RUN = """
import random
from ledger.paxos import Envelope, Learn, PaxosConfig, PaxosNode
from ledger.storage.memory import MemoryStore

assert False, "asserts are on: this is not python -O"
node = PaxosNode(0, PaxosConfig(cluster_size=3), MemoryStore(), random.Random(0), 0)
for envelope in (Envelope(1, 1, Learn("a", 0, b"v")), Envelope(1, 0, Learn("a", 2, b"one")),
                 Envelope(1, 0, Learn("a", 2, b"two"))):
    try:
        node.handle(envelope, 0)
    except AssertionError as error:
        print(type(error).__name__)
"""


def test_the_checks_hold_under_python_dash_o() -> None:
    result = subprocess.run([sys.executable, "-O", "-c", OPTIMISED_RUN], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["InvariantViolation", "AgreementViolation"]
