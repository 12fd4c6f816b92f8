"""Which life of each peer's data directory this node counts messages from.

Every node records, durably and before it counts anything from a peer, that peer's
incarnation (made when its data directory was created, renewed by `ledger
recover`), and the highest commit count the peer's messages carried. From then on
it refuses Paxos messages from any other incarnation (a wiped directory, a second
process started with the same node id) and from the same incarnation with an
older commit count (a directory restored from an older copy). Only `Rejoin`, sent
by `ledger recover`, replaces a peer's recorded incarnation.
"""

from __future__ import annotations

import logging
import time

from ledger.storage.base import Incarnation, PeerRecord, Store

log = logging.getLogger(__name__)

SEQ_PERSIST_EVERY_S = 1.0  # the highest commit count seen is made durable this often


class PeerRefused(Exception):
    """A peer's message comes from a life of its data directory this node does not count."""


def recover_hint(node_id: str) -> str:
    return (f"node {node_id} must be brought back with `ledger recover --node-id {node_id} "
            f"--data-dir DIR --cluster ...` (see README, 'Losing a disk')")


class PeerBook:
    """The durable peer records of one node, checked on every peer request and reply."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._records = store.peer_records()
        # The process (boot) of each peer whose commit count was checked: within one
        # process the count only rises, though a call and an answer may pass each other.
        self._boots: dict[str, int] = {}
        self._persisted = dict(self._records)
        self._persisted_at_s = time.monotonic()

    def record(self, node_id: str) -> PeerRecord | None:
        return self._records.get(node_id)

    def admit(self, node_id: str, incarnation: Incarnation | None, durable_seq: int,
              boot: int) -> None:
        """Count messages from `node_id` in this life; PeerRefused says why not.

        A first contact is recorded durably before anything from it counts. A process
        of the peer not heard from before must not hold fewer commits than were seen
        from the directory (it would have been restored from an older copy).
        """
        if incarnation is None:
            raise PeerRefused(f"node {node_id} sent no incarnation: every node must run a "
                              f"version that does")
        recorded = self._records.get(node_id)
        if recorded is None:
            self._persist_with(node_id, PeerRecord(incarnation, durable_seq))
            self._boots[node_id] = boot
            log.info("recorded node %s's data directory, incarnation %s", node_id, incarnation)
            return
        if incarnation != recorded.incarnation:
            raise PeerRefused(
                f"node {node_id} runs on a data directory of incarnation {incarnation}, but "
                f"this node counts only incarnation {recorded.incarnation} of it (the directory "
                f"was wiped or replaced, or a second process uses the id): "
                f"{recover_hint(node_id)}")
        if self._boots.get(node_id) != boot:
            if durable_seq < recorded.durable_seq:
                raise PeerRefused(
                    f"node {node_id}'s data directory has made {durable_seq} commits, but this "
                    f"node has seen it at {recorded.durable_seq}: it was restored from an older "
                    f"copy and forgot promises or votes; {recover_hint(node_id)}")
            self._boots[node_id] = boot
        if durable_seq > recorded.durable_seq:
            self._records[node_id] = PeerRecord(incarnation, durable_seq)
            if time.monotonic() - self._persisted_at_s >= SEQ_PERSIST_EVERY_S:
                self._persist(wait=False)  # a count seen: worth keeping, not worth a stall

    def rejoin(self, node_id: str, incarnation: Incarnation) -> None:
        """`ledger recover` made a new incarnation of `node_id`: count only it from now on."""
        recorded = self._records.get(node_id)
        if recorded is not None and incarnation.generation <= recorded.incarnation.generation \
                and incarnation != recorded.incarnation:
            raise PeerRefused(
                f"node {node_id} asks to rejoin as incarnation {incarnation}, not above the "
                f"recorded {recorded.incarnation}")
        self._persist_with(node_id, PeerRecord(incarnation, 0))
        self._boots.pop(node_id, None)
        log.warning("node %s rejoined with a new data directory, incarnation %s; nothing from "
                    "its former life counts any more", node_id, incarnation)

    def flush(self) -> None:
        """Make the commit counts seen so far durable (at shutdown)."""
        if self._records != self._persisted:
            self._persist()

    def _persist_with(self, node_id: str, record: PeerRecord) -> None:
        """Record `record` durably, and only then count it (a failed write counts nothing)."""
        records = {**self._records, node_id: record}
        self._store.set_peer_records(records)
        self._records = records
        self._persisted = dict(records)
        self._persisted_at_s = time.monotonic()

    def _persist(self, wait: bool = True) -> None:
        self._store.set_peer_records(dict(self._records), wait)
        self._persisted = dict(self._records)
        self._persisted_at_s = time.monotonic()
