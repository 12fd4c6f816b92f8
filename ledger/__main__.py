"""`python -m ledger ...` is the `ledger` command."""

from ledger.cli.main import main

main()
