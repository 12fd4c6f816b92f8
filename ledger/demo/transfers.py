"""The demo's transfers: one that completes, then one whose node dies between the debit
and the credit, completed by another node without anyone asking again."""

from __future__ import annotations

import os
import time

from ledger.bank import failpoints
from ledger.client import BankAudit, LedgerClient, LedgerError, TransferReceipt
from ledger.client.money import format_amount
from ledger.demo.tellers import Say, Tally
from ledger.tools.localcluster import ProcessCluster

ORPHAN_WAIT_S = 60.0  # the courier takes over a transfer 10 s old; a margin on top
POLL_S = 0.5


def show_transfers(cluster: ProcessCluster, tally: Tally, say: Say) -> bool:
    """Run both transfers, keeping `tally.expected` true; True when both completed."""
    servers, security = cluster.addresses, cluster.security
    with LedgerClient(servers[1:], security=security) as bank:
        receipt = bank.transfer("alice", "carol", 25_00, memo="demo transfer")
        _expect(tally, "alice", "carol", 25_00)
        say(f"\nTransfer of {format_amount(25_00)} from alice to carol through "
            f"{cluster.nodes[1].node_id}: {_text(receipt)}")
    say(f"Now a transfer whose node dies between its debit and its credit: "
        f"{cluster.nodes[2].node_id} restarts with {failpoints.ENV}="
        f"{failpoints.AFTER_TRANSFER_DEBIT} (a test hook: it exits right after a "
        "transfer's debit is chosen).")
    cluster.terminate(2)
    cluster.env = {**os.environ, failpoints.ENV: failpoints.AFTER_TRANSFER_DEBIT}
    try:
        cluster.start_node(2)
    finally:
        cluster.env = None
    with LedgerClient([servers[2]], timeout_s=5, security=security) as doomed:
        try:
            doomed.transfer("bob", "dave", 40_00, request_id="demo-orphan")
            say("  (the node answered: the failpoint did not fire)")
        except LedgerError as error:
            say(f"  the call failed as its node died: {type(error).__name__}")
    _expect(tally, "bob", "dave", 40_00)
    say(f"  {cluster.nodes[2].node_id} is down; bob was debited, nobody asks again. The "
        "node leading bob (or any node, once the transfer is 10 s old) finds it in its "
        "table of pending transfers and delivers the credit:")
    completed = _wait_for_credit(cluster, say)
    cluster.start_node(2, wait=False)
    say(f"  restarted {cluster.nodes[2].node_id} without the failpoint.")
    return completed


def _wait_for_credit(cluster: ProcessCluster, say: Say) -> bool:
    started = time.monotonic()
    with LedgerClient(cluster.addresses[:2], timeout_s=5, security=cluster.security) as bank:
        say(f"  {_audit_text(bank.audit(totals_only=True))}")
        while time.monotonic() - started < ORPHAN_WAIT_S:
            dave = bank.balance("dave").balance
            credited = [e for e in bank.history("dave", limit=1_000)
                        if e.request_id == "demo-orphan"]
            if credited:
                say(f"  after {time.monotonic() - started:.0f}s: dave credited "
                    f"{format_amount(credited[0].amount)} from {credited[0].counterparty} "
                    f"(operation {credited[0].position}); balance {format_amount(dave)}.")
                again = bank.transfer("bob", "dave", 40_00, request_id="demo-orphan")
                say(f"  asking again with the same request id: {_text(again)}")
                say(f"  {_audit_text(bank.audit(totals_only=True))}")
                return True
            time.sleep(POLL_S)
    say("  the orphaned transfer was NOT completed in time: see the node logs.")
    return False


def _expect(tally: Tally, source: str, target: str, amount: int) -> None:
    with tally.lock:
        tally.expected[source] -= amount
        tally.expected[target] += amount


def _text(receipt: TransferReceipt) -> str:
    done = ("already done earlier with this request id, nothing new written"
            if receipt.duplicate else "done")
    return (f"{done}; the debit is operation {receipt.from_position} of "
            f"{receipt.from_account_id} (balance {format_amount(receipt.from_balance)}), the "
            f"credit operation {receipt.to_position} of {receipt.to_account_id}")


def _audit_text(audit: BankAudit) -> str:
    return (f"{audit.node}'s audit, one consistent cut of the bank: balances "
            f"{format_amount(audit.balances)} + in flight {format_amount(audit.in_flight)} "
            f"({audit.transfers_in_flight} transfers) = {format_amount(audit.total)}, what was "
            "opened plus deposited minus withdrawn")
