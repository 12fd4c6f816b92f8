"""The peer book: which life of each peer's data directory a node counts messages from."""

from __future__ import annotations

import pytest

from ledger.node.peer_book import PeerBook, PeerRefused
from ledger.storage.base import Incarnation, PeerRecord
from ledger.storage.memory import MemoryStore

FIRST = Incarnation(0, b"a" * 16)
OTHER = Incarnation(0, b"b" * 16)
RECOVERED = Incarnation(1, b"c" * 16)


def test_a_first_contact_is_recorded_durably_before_it_counts() -> None:
    store = MemoryStore()
    PeerBook(store).admit("n2", FIRST, 7, boot=1)
    assert store.peer_records() == {"n2": PeerRecord(FIRST, 7)}


def test_another_incarnation_of_a_recorded_peer_is_refused() -> None:
    book = PeerBook(MemoryStore())
    book.admit("n2", FIRST, 7, boot=1)
    with pytest.raises(PeerRefused, match=r"wiped or replaced.*ledger recover"):
        book.admit("n2", OTHER, 100, boot=2)
    with pytest.raises(PeerRefused, match="sent no incarnation"):
        book.admit("n2", None, 100, boot=2)


def test_counts_may_pass_each_other_within_one_process_but_not_across_a_restart() -> None:
    store = MemoryStore()
    book = PeerBook(store)
    book.admit("n2", FIRST, 10, boot=1)
    book.admit("n2", FIRST, 12, boot=1)
    book.admit("n2", FIRST, 11, boot=1)  # an answer that left before a later call: fine
    book.admit("n2", FIRST, 12, boot=2)  # restarted with everything it had: fine
    with pytest.raises(PeerRefused, match="restored from an older copy"):
        book.admit("n2", FIRST, 11, boot=3)  # a new process that holds less
    book.flush()
    # A node restarted itself remembers: the same holds against its durable record.
    with pytest.raises(PeerRefused, match="restored from an older copy"):
        PeerBook(store).admit("n2", FIRST, 11, boot=4)


def test_only_a_later_generation_replaces_a_recorded_incarnation() -> None:
    book = PeerBook(MemoryStore())
    book.admit("n2", FIRST, 50, boot=1)
    with pytest.raises(PeerRefused, match="not above"):
        book.rejoin("n2", OTHER)
    book.rejoin("n2", RECOVERED)
    book.admit("n2", RECOVERED, 0, boot=2)  # the new directory starts counting again
    with pytest.raises(PeerRefused, match="wiped or replaced"):
        book.admit("n2", FIRST, 60, boot=1)  # the former life is refused for good
