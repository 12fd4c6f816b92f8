"""Invariant checks an input can reach raise named exceptions, under `python -O` too."""

from __future__ import annotations

import pathlib
import random
import subprocess
import sys
from dataclasses import dataclass

import pytest

from ledger.paxos import (
    Envelope,
    InvariantViolation,
    Learn,
    PaxosConfig,
    PaxosNode,
)
from ledger.storage.memory import MemoryStore

ROOT = pathlib.Path(__file__).resolve().parent.parent.parent


def new_node(index: int = 0) -> PaxosNode:
    return PaxosNode(index, PaxosConfig(cluster_size=3), MemoryStore(), random.Random(0), 0)


def test_the_exceptions_are_assertion_errors_the_simulator_records() -> None:
    assert issubclass(InvariantViolation, AssertionError)


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
try:
    node.handle(Envelope(1, 1, Learn("a", 0, b"v")), 0)
except AssertionError as error:
    print(type(error).__name__)
for value in (b"one", b"two"):
    ready = node.handle(Envelope(1, 0, Learn("a", 2, value)), 0)
print(len(ready.alarms))
"""


def test_the_checks_hold_under_python_dash_o() -> None:
    result = subprocess.run([sys.executable, "-O", "-c", OPTIMISED_RUN], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["InvariantViolation", "1"]
