"""`ledger dashboard`: a live page of a running cluster, served to a local browser."""
