"""The bank: the ledger state machine over the replicated logs, and its write and read paths."""
