"""Putting back a chosen value whose record was damaged, from a peer's copy.

A chosen value is final: every replica that holds slot s of an account holds the
same value there. So a value that fails its checksum is fetched again from a peer,
written back durably, and the account (quarantined meanwhile) is acted on again as
after a restart. Promises and votes cannot be fetched: they are this node's own
word, and only `ledger recover` makes their loss safe.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from ledger.storage.base import ChosenRepair, StorageError

if TYPE_CHECKING:
    from ledger.node.driver import NodeDriver

log = logging.getLogger(__name__)

#: Fetches the chosen value at (account, slot) from some peer; None if none had it.
FetchChosen = Callable[[str, int], Awaitable[bytes | None]]

RETRY_S = 1.0  # how often a repair asks the peers again while none can answer
MAX_ATTEMPTS = 600  # then the account stays quarantined, for `ledger recover`


class Repairs:
    """The repairs under way, one task per damaged (account, slot)."""

    def __init__(self, driver: NodeDriver) -> None:
        self._driver = driver
        self._tasks: dict[tuple[str, int], asyncio.Task[None]] = {}

    def cancel_all(self) -> None:
        """The driver stops: no repair outlives it (a restart finds the damage again)."""
        for task in self._tasks.values():
            task.cancel()

    def start(self, account: str, slot: int) -> None:
        if (account, slot) not in self._tasks:
            task = asyncio.get_running_loop().create_task(self._repair(account, slot))
            self._tasks[(account, slot)] = task
            task.add_done_callback(lambda _: self._tasks.pop((account, slot), None))

    async def _repair(self, account: str, slot: int) -> None:
        driver = self._driver
        fetch = driver.fetch_chosen
        assert fetch is not None
        for _ in range(MAX_ATTEMPTS):
            value = await fetch(account, slot)
            if value is not None:
                try:
                    driver.put_back(ChosenRepair(account, slot, value))
                except StorageError as error:
                    log.error("cannot write back the chosen value of account %r at slot %d: "
                              "%s", account, slot, error)
                else:
                    log.warning("repaired the damaged chosen value of account %r at slot %d "
                                "from a peer's copy", account, slot)
                    return
            await asyncio.sleep(RETRY_S)
        log.error("no peer could give the chosen value of account %r at slot %d: the account "
                  "stays quarantined here; run `ledger recover` on this node", account, slot)
