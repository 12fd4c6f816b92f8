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


def reapply_unapplied(store: Store, state_machine: StateMachine) -> int:
    """Stage the applies of every chosen but unapplied entry; how many there were."""
    reapplied = 0
    after = ""
    while True:
        summaries = store.account_summaries(after, ACCOUNTS_PER_PAGE)
        for summary in summaries:
            slot = state_machine.applied_slot(summary.account) + 1
            while slot <= summary.chosen_through:
                values = store.chosen_values(summary.account, slot, VALUES_PER_READ)
                if not values:
                    raise Corruption(
                        f"account {summary.account!r}: the chosen prefix ends at slot "
                        f"{summary.chosen_through}, but slot {slot} is not stored")
                store.stage(state_machine.apply([
                    Committed(summary.account, slot + offset, value)
                    for offset, value in enumerate(values)]))
                slot += len(values)
                reapplied += len(values)
        store.stage(state_machine.flush())
        if len(summaries) < ACCOUNTS_PER_PAGE:
            return reapplied
        after = summaries[-1].account
