"""The public gRPC API (package ledger.v1, service Ledger): thin servicers over the bank."""
