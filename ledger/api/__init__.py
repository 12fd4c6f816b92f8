"""The public API (package ledger.v1, service Ledger) on the wire, shared by both ends:
the servicers and the forwarder on the server side, the Python client on the other."""
