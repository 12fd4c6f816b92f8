"""Driving a cluster from outside: real server processes on this machine, and the check
that their replicas agree (the demo, chaos runs, benchmarks, `ledger cluster up`,
`ledger status` and the tests use these)."""
