"""Helpers shared by the test packages (clusters, clients, polling, stores, strategies)."""
