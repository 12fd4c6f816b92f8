"""The simplest state machine a driver can apply chosen entries to, for driver tests."""

from __future__ import annotations

from collections.abc import Sequence

from ledger.paxos import Committed
from ledger.storage.base import AppWrite, Store


class AppliedSlots:
    """Remembers how far each account's log was applied, and checks it is applied in order."""

    TABLES = ("applied",)

    def __init__(self, store: Store) -> None:
        self._store = store

    def applied_slot(self, account: str) -> int:
        raw = self._store.app_get("applied", account.encode())
        return -1 if raw is None else int.from_bytes(raw, "big", signed=True)

    def apply(self, entries: Sequence[Committed]) -> list[AppWrite]:
        last: dict[str, int] = {}
        for committed in entries:
            expected = last.get(committed.account, self.applied_slot(committed.account)) + 1
            assert committed.slot == expected, "entries apply in log order"
            last[committed.account] = committed.slot
        return [AppWrite("applied", account.encode(), slot.to_bytes(8, "big", signed=True))
                for account, slot in last.items()]

    def flush(self) -> list[AppWrite]:
        return []

    def waiting_on(self) -> dict[str, int]:
        return {}  # it never holds an entry back
