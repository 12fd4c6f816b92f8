"""After a crash: apply the chosen entries whose applied state did not reach the disk.

Applied state is derived from the log, so its writes may trail the log's (they are
flushed lazily); a crash can leave the tail of some accounts' chosen prefixes
unapplied. At start the driver applies them again, a page of accounts and a range
of chosen values at a time.
"""

from __future__ import annotations

from ledger.node.consensus import StateMachine
from ledger.paxos import Committed
from ledger.storage.base import Corruption, Store

ACCOUNTS_PER_PAGE = 1_000
VALUES_PER_READ = 1_000


def reapply_unapplied(store: Store, state_machine: StateMachine) -> tuple[int, list[Corruption]]:
    """Stage the applies of every chosen but unapplied entry: how many there were, and the
    damage found on the way (an account whose chosen values cannot be read is skipped,
    for the caller to quarantine and repair; the others are applied)."""
    reapplied = 0
    damaged: list[Corruption] = []
    after = ""
    while True:
        try:
            summaries = store.account_summaries(after, ACCOUNTS_PER_PAGE)
        except Corruption as error:  # a damaged tail: the node must recover anyway
            if error.account is None:
                raise
            damaged.append(error)
            return reapplied, damaged
        for summary in summaries:
            try:
                reapplied += reapply_account(store, state_machine, summary.account,
                                             summary.chosen_through)
            except Corruption as error:
                if error.account is None:
                    raise
                damaged.append(error)
        store.stage(state_machine.flush())
        if len(summaries) < ACCOUNTS_PER_PAGE:
            return reapplied, damaged
        after = summaries[-1].account


def reapply_account(store: Store, state_machine: StateMachine, account: str,
                    chosen_through: int) -> int:
    """Stage the applies of `account`'s chosen but unapplied entries; how many."""
    reapplied = 0
    slot = state_machine.applied_slot(account) + 1
    while slot <= chosen_through:
        values = store.chosen_values(account, slot, VALUES_PER_READ)
        if not values:
            raise Corruption(
                f"account {account!r}: the chosen prefix ends at slot {chosen_through}, but "
                f"slot {slot} is not stored", account)
        store.stage(state_machine.apply([
            Committed(account, slot + offset, value) for offset, value in enumerate(values)]))
        slot += len(values)
        reapplied += len(values)
    return reapplied
