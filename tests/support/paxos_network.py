"""A tiny synchronous cluster for unit tests: nodes joined by an in-process link.

Messages are delivered in order unless a test drops or holds them; time moves
only when a test advances it. Every Ready is carried out as the real driver
does: stage and sync the writes, then send, then apply.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable

from ledger.paxos import Committed, Envelope, Outcome, PaxosConfig, PaxosNode, Ready
from ledger.storage.memory import MemoryStore

Filter = Callable[[Envelope], bool]


class LocalCluster:
    def __init__(self, size: int, *, fast_path: bool = True, seed: int = 0,
                 **config: int) -> None:
        self.config = PaxosConfig(cluster_size=size, fast_path=fast_path, **config)
        self.seed = seed
        self.now_ms = 0
        self.stores = [MemoryStore() for _ in range(size)]
        self.nodes = [self._new_node(index) for index in range(size)]
        self.in_flight: deque[Envelope] = deque()
        self.committed: list[list[Committed]] = [[] for _ in range(size)]
        self.outcomes: list[list[Outcome]] = [[] for _ in range(size)]
        self.readies: list[tuple[int, Ready]] = []
        self.down: set[int] = set()

    def _new_node(self, index: int) -> PaxosNode:
        rng = random.Random(f"{self.seed}/{index}/{self.now_ms}")
        return PaxosNode(index, self.config, self.stores[index], rng, self.now_ms)

    def carry_out(self, index: int, ready: Ready) -> Ready:
        self.readies.append((index, ready))
        self.stores[index].stage(ready.writes)
        self.stores[index].sync()
        self.in_flight.extend(ready.messages)
        self.committed[index].extend(ready.committed)
        self.outcomes[index].extend(ready.outcomes)
        return ready

    def propose(self, index: int, account: str, value: bytes) -> Ready:
        return self.carry_out(index, self.nodes[index].propose(account, value, self.now_ms))

    def deliver(self, drop: Filter = lambda envelope: False, max_messages: int = 100_000) -> int:
        """Deliver everything in flight (and what it causes); returns how many were delivered."""
        delivered = 0
        while self.in_flight:
            envelope = self.in_flight.popleft()
            if envelope.destination in self.down or drop(envelope):
                continue
            node = self.nodes[envelope.destination]
            self.carry_out(envelope.destination, node.handle(envelope, self.now_ms))
            delivered += 1
            assert delivered < max_messages, "messages keep flowing: livelock?"
        return delivered

    def advance(self, ms: int, drop: Filter = lambda envelope: False) -> None:
        """Move time forward in 10 ms steps, ticking live nodes and delivering."""
        end_ms = self.now_ms + ms
        while self.now_ms < end_ms:
            self.now_ms = min(end_ms, self.now_ms + 10)
            for index, node in enumerate(self.nodes):
                if index not in self.down:
                    self.carry_out(index, node.tick(self.now_ms))
            self.deliver(drop)

    def crash(self, index: int) -> None:
        self.down.add(index)
        self.stores[index].crash()

    def restart(self, index: int) -> None:
        self.down.discard(index)
        self.nodes[index] = self._new_node(index)

    def log(self, index: int, account: str) -> list[bytes]:
        return list(self.stores[index].chosen_values(account, 0, 1 << 30))

    def sent(self, kind: type) -> list[Envelope]:
        return [e for _, ready in self.readies for e in ready.messages
                if isinstance(e.message, kind)]
