"""The demo's side-by-side view of every replica, and waiting for them to converge."""

from __future__ import annotations

import time

from ledger.client.money import format_amount
from ledger.demo.tellers import OPENINGS, Say, Tally
from ledger.tools.localcluster import ProcessCluster
from ledger.tools.replicas import AccountView, node_views

CONVERGENCE_TIMEOUT_S = 60.0
STATUS_TIMEOUT_S = 2.0


def convergence_table(cluster: ProcessCluster, tally: Tally) -> tuple[list[str], bool]:
    """Rows of the side-by-side view, and whether every replica matches the expectation:
    the same log everywhere, applied, at the balance the tellers' answers imply."""
    views = node_views(cluster.addresses, STATUS_TIMEOUT_S, cluster.security)
    header = f"  {'account':<8}{'expected':>12}  " + "".join(
        f"{node.node_id + ': length/balance/digest':<36}" for node in cluster.nodes) + "agree"
    rows = [header]
    all_agree = True
    for account in sorted(OPENINGS):
        cells = []
        seen: set[AccountView | None] = set()
        for view in views:
            held = None if view is None else view.get(account)
            seen.add(held)
            if held is None:
                cells.append(f"{'(down)' if view is None else '(unknown here)':<36}")
                continue
            balance = format_amount(held.balance or 0)
            cells.append(f"{held.chosen_through + 1:>5} {balance:>12} "
                         f"{held.digest.hex()[:8]:<12}      ")
        expected = tally.expected[account]
        common = next(iter(seen))
        agree = (len(seen) == 1 and common is not None and common.balance == expected
                 and common.caught_up)
        all_agree &= agree
        rows.append(f"  {account:<8}{format_amount(expected):>12}  " + "".join(cells)
                    + ("yes" if agree else "not yet"))
    return rows, all_agree


def watch_convergence(cluster: ProcessCluster, tally: Tally, say: Say) -> bool:
    deadline = time.monotonic() + CONVERGENCE_TIMEOUT_S
    last: list[str] = []
    while time.monotonic() < deadline:
        rows, agree = convergence_table(cluster, tally)
        if rows != last:
            say("\n".join(rows))
            say("")
            last = rows
        if agree:
            return True
        time.sleep(0.3)
    return False
