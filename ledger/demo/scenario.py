"""`ledger demo`: a local 3-node cluster, tellers working through it, a crash, convergence.

It opens a few accounts, runs three tellers concurrently through different nodes
(deposits, withdrawals that must be refused, retries with the same request id),
kills one replica with SIGKILL mid-run, keeps going, restarts it, and then shows
every replica converging to the balances the acknowledged operations imply. Then
two transfers: one that completes, and one whose node dies between its debit and
its credit, completed by another node.
"""

from __future__ import annotations

import pathlib
import shutil
import tempfile
import threading
import time

from ledger.client import LedgerClient
from ledger.client.money import format_amount
from ledger.demo.convergence import watch_convergence
from ledger.demo.explain import explain_transactions, write_page
from ledger.demo.tellers import (
    OPENINGS,
    OPERATIONS_PER_TELLER,
    UNKNOWN_OUTCOME_RETRY_S,
    Say,
    Tally,
    teller_work,
)
from ledger.demo.transfers import show_transfers
from ledger.tools.localcluster import ProcessCluster


def run_demo(say: Say, explain: bool = False, seed: int = 7,
             html: pathlib.Path | None = None) -> bool:
    """Run the whole demo; True when every replica converged to the expected balances.
    With `explain`, `html` names a page to write the explained transactions' diagrams to."""
    base = pathlib.Path(tempfile.mkdtemp(prefix="ledger-demo-"))
    try:
        say(f"Starting a 3-node ledger cluster on 127.0.0.1 (data in {base})...")
        with ProcessCluster(base / "cluster", 3) as cluster:
            say(f"  nodes: {cluster.cluster_flag}; mutual TLS, certificates in "
                f"{cluster.tls_dir}")
            return _run(cluster, say, explain, seed, html)
    finally:
        shutil.rmtree(base, ignore_errors=True)
        say(f"Stopped the cluster and removed {base}.")


def _run(cluster: ProcessCluster, say: Say, explain: bool, seed: int,
         html: pathlib.Path | None) -> bool:
    servers = cluster.addresses
    security = cluster.security  # the cluster's local client certificate: every role
    for index, (account, opening) in enumerate(sorted(OPENINGS.items())):
        with LedgerClient(servers[index % 3:] + servers[:index % 3], security=security) as bank:
            bank.open_account(account, opening)
    say("Opened " + ", ".join(f"{a} with {format_amount(b)}"
                              for a, b in sorted(OPENINGS.items())))
    tally = Tally()
    stop = threading.Event()
    say(f"Three tellers now work concurrently, each through its own node: "
        f"{OPERATIONS_PER_TELLER} operations each, some withdrawals too large to allow "
        "(the ledger must refuse them), and every 7th operation sent twice with the same "
        "request id, as a teller would after a timeout.")
    # Daemon threads, stopped in `finally`: a Ctrl-C must not wait for them to give up.
    tellers = [threading.Thread(target=teller_work,
                                args=(i, servers, security, tally, seed + i, stop), daemon=True)
               for i in range(3)]
    try:
        for thread in tellers:
            thread.start()
        killed = _watch_tellers(cluster, tellers, tally, say)
    finally:
        stop.set()
        for thread in tellers:  # each gives up within one client timeout once stopped
            thread.join(timeout=30)
    if killed:
        cluster.start_node(2, wait=False)
    progress(say, tally.done, 3 * OPERATIONS_PER_TELLER, tally)
    if tally.undecided:
        say(f"\n{tally.undecided} operations stayed undecided even after retrying for "
            f"{UNKNOWN_OUTCOME_RETRY_S:.0f}s: the expected balances cannot be exact.")
        return False
    say(f"\nAll tellers done: {tally.done} operations decided, {tally.refused} refused for "
        f"insufficient funds, {tally.duplicates} retries answered as duplicates (not applied "
        f"twice), {tally.unknown_then_settled} unknown outcomes settled by retrying.")
    say("Waiting for every replica to hold the same log (no client traffic now):")
    converged = watch_convergence(cluster, tally, say)
    if converged:
        say("Every replica holds the same log and the balances the tellers' acknowledged "
            "operations imply.")
        transferred = show_transfers(cluster, tally, say)
        say("Waiting for every replica to agree again, the transfers included:")
        converged = watch_convergence(cluster, tally, say) and transferred
        if converged:
            say("Every replica holds the same log again, each transfer debited once and "
                "credited once.")
    if not converged:
        say("The replicas did NOT converge in time: see the node logs.")
    if explain:
        diagrams = explain_transactions(cluster, say)
        if html is not None:
            write_page(html, diagrams)
            say(f"\nThe same transactions as sequence diagrams: {html}")
    return converged


def _watch_tellers(cluster: ProcessCluster, tellers: list[threading.Thread], tally: Tally,
                   say: Say) -> bool:
    """Show progress; kill node 3 a third of the way, restart it at two thirds.

    Returns True if node 3 is still down when the tellers finish (the caller restarts it).
    """
    total = 3 * OPERATIONS_PER_TELLER
    killed = restarted = False
    shown = -1
    while any(thread.is_alive() for thread in tellers):
        with tally.lock:
            done = tally.done
        if done != shown:
            progress(say, done, total, tally)
            shown = done
        if not killed and done >= total // 3:
            say(f"\n  ** killing node {cluster.nodes[2].node_id} with SIGKILL mid-run; "
                "the tellers carry on with the other two **")
            cluster.kill(2)
            killed = True
        elif killed and not restarted and done >= 2 * total // 3:
            say(f"\n  ** restarting node {cluster.nodes[2].node_id}; it must catch up "
                "on its own **")
            cluster.start_node(2, wait=False)
            restarted = True
        time.sleep(0.2)
    if killed and not restarted:
        say(f"\n  ** restarting node {cluster.nodes[2].node_id}; it must catch up "
            "on its own **")
    return killed and not restarted


def progress(say: Say, done: int, total: int, tally: Tally) -> None:
    say(f"\r  operations decided: {done}/{total} (refused {tally.refused}, "
        f"duplicate retries {tally.duplicates})")
