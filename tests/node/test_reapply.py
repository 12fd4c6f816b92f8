"""At start, chosen but unapplied entries are applied again; damage stops one account only."""

from __future__ import annotations

from collections.abc import Sequence

from ledger.node.reapply import reapply_unapplied
from ledger.paxos import ChosenWrite
from ledger.storage.base import AccountSummary, Corruption
from ledger.storage.memory import MemoryStore
from tests.support.state_machines import AppliedSlots


class DamagedAt(MemoryStore):
    """A store whose chosen value of `account` at `slot` fails its checksum."""

    def __init__(self, account: str, slot: int) -> None:
        super().__init__(AppliedSlots.TABLES)
        self.damaged = (account, slot)

    def chosen_values(self, account: str, from_slot: int, limit: int) -> Sequence[bytes]:
        values = super().chosen_values(account, from_slot, limit)
        damaged_account, damaged_slot = self.damaged
        if account == damaged_account and from_slot <= damaged_slot < from_slot + len(values):
            raise Corruption("damaged", account, damaged_slot)
        return values


def test_a_damaged_account_is_skipped_and_reported_and_the_rest_applied() -> None:
    store = DamagedAt("bad", 1)
    store.stage([ChosenWrite(account, slot, b"v") for account in ("bad", "good")
                 for slot in range(3)])
    store.sync()
    machine = AppliedSlots(store)
    reapplied, damaged = reapply_unapplied(store, machine)
    assert reapplied == 3 and machine.applied_slot("good") == 2
    assert [(error.account, error.slot) for error in damaged] == [("bad", 1)]
    assert machine.applied_slot("bad") == -1


class DamagedTail(MemoryStore):
    def account_summaries(self, after: str, limit: int) -> Sequence[AccountSummary]:
        raise Corruption("the chosen tail of account 'bad' is damaged", "bad")


def test_a_damaged_tail_is_reported_not_raised() -> None:
    store = DamagedTail(AppliedSlots.TABLES)
    reapplied, damaged = reapply_unapplied(store, AppliedSlots(store))
    assert reapplied == 0 and [(e.account, e.slot) for e in damaged] == [("bad", None)]
