"""Benchmarks and measurements run by hand (never by the test suite)."""
