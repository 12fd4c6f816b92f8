"""Real 3-node clusters of `ledger serve` processes on 127.0.0.1, for end-to-end tests.

`shared_cluster` is one cluster for the whole run (each xdist worker starts its own),
for every test that does not kill, pause or restart a node; such a test uses account
names of its own and never counts what others wrote. A test that does harm a node
starts a cluster of its own with `own_cluster`.
"""

from __future__ import annotations

import pathlib
from collections.abc import Iterator

import pytest

from ledger.tools.localcluster import ProcessCluster, free_ports


@pytest.fixture(scope="session")
def shared_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProcessCluster]:
    with ProcessCluster(tmp_path_factory.mktemp("shared") / "cluster", 3) as cluster:
        yield cluster


@pytest.fixture
def own_cluster(tmp_path: pathlib.Path) -> Iterator[ProcessCluster]:
    """A cluster for this test alone: it may kill, pause and restart its nodes."""
    with ProcessCluster(tmp_path / "cluster", 3) as cluster:
        yield cluster


@pytest.fixture
def nowhere() -> str:
    """An address where nothing listens (the port was free a moment ago)."""
    return f"127.0.0.1:{free_ports(1)[0]}"


def servers_flag(cluster: ProcessCluster) -> str:
    return ",".join(cluster.addresses)
