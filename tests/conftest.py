"""Fixtures every test package may use (defined in tests/support)."""

from tests.support.clusters import nowhere, own_cluster, shared_cluster

__all__ = ["nowhere", "own_cluster", "shared_cluster"]
