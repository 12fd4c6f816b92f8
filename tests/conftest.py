"""Fixtures every test package may use (defined in tests/support)."""

from tests.support.clusters import nowhere, own_cluster, shared_cluster
from tests.support.in_process import servers

__all__ = ["nowhere", "own_cluster", "servers", "shared_cluster"]
