"""A Megastore-style replicated bank ledger: one Paxos-replicated log per account."""

__version__ = "0.1.0"
