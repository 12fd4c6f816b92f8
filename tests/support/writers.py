"""A background writer for tests that harm nodes while writes flow."""

from __future__ import annotations

import threading

from ledger.client import LedgerClient, LedgerError


class Writer:
    """Deposits 1 into an account in a loop (bounded), recording what was acknowledged."""

    def __init__(self, bank: LedgerClient, account: str, limit: int) -> None:
        self.acknowledged: list[tuple[int, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(bank, account, limit))
        self._thread.start()

    def _run(self, bank: LedgerClient, account: str, limit: int) -> None:
        for i in range(limit):
            if self._stop.is_set():
                return
            try:
                done = bank.deposit(account, 1, request_id=f"{account}-{i}")
            except LedgerError:
                continue
            self.acknowledged.append((done.position, done.request_id))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
