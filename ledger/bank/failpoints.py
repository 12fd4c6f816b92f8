"""A test hook: a named instant at which a node dies on purpose.

Off unless the environment variable LEDGER_FAILPOINT names the instant; then the
process exits there at once, as a SIGKILL would end it (nothing flushed, nothing
answered). Tests and `ledger demo` use it to kill a node between a transfer's debit
and its credit, where no signal sent from outside could be timed. Never set it on a
node that serves anyone.
"""

from __future__ import annotations

import logging
import os

log = logging.getLogger(__name__)

ENV = "LEDGER_FAILPOINT"
AFTER_TRANSFER_DEBIT = "after-transfer-debit"  # the debit is chosen, the credit not proposed
NAMES = (AFTER_TRANSFER_DEBIT,)
EXIT_CODE = 86


def reached(name: str) -> None:
    """Die here if LEDGER_FAILPOINT names this instant."""
    assert name in NAMES
    if os.environ.get(ENV) == name:
        log.critical("%s=%s: exiting now, as a crash at this instant would", ENV, name)
        logging.shutdown()
        os._exit(EXIT_CODE)
