"""Whole nodes in the test's own process: real gRPC on loopback, memory stores.

Faster than processes, and a test can look into a node's store and counters.
"""

from __future__ import annotations

import pathlib
from collections.abc import AsyncIterator

import pytest

from ledger.bank.state_machine import LedgerStateMachine
from ledger.node.cluster import ClusterConfig
from ledger.server.config import ServeConfig
from ledger.server.limits import ServerLimits
from ledger.server.node_server import NodeServer
from ledger.storage.base import Store
from ledger.storage.memory import MemoryStore
from ledger.tools.localcluster import free_ports


class Servers:
    def __init__(self, size: int) -> None:
        ports = free_ports(size)
        self.cluster = ClusterConfig.parse(
            ",".join(f"n{i + 1}=127.0.0.1:{port}" for i, port in enumerate(ports)))
        self.nodes: list[NodeServer | None] = [None] * size

    async def start(self, index: int, store: Store | None = None,
                    limits: ServerLimits | None = None) -> NodeServer:
        """Start node `index` over `store` (default: a new in-memory one)."""
        config = ServeConfig(f"n{index + 1}", pathlib.Path("/nonexistent"), self.cluster)
        node = NodeServer(config, store or MemoryStore(LedgerStateMachine.TABLES), limits)
        await node.start()
        self.nodes[index] = node
        return node

    def address(self, index: int) -> str:
        return self.cluster.members[index].address

    async def stop(self) -> None:
        for node in self.nodes:
            if node is not None:
                await node.stop()


@pytest.fixture
async def servers() -> AsyncIterator[Servers]:
    running = Servers(3)
    yield running
    await running.stop()
