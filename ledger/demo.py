"""`ledger demo`: a local 3-node cluster, tellers working through it, a crash, convergence.

It opens a few accounts, runs three tellers concurrently through different nodes
(deposits, withdrawals that must be refused, retries with the same request id),
kills one replica with SIGKILL mid-run, keeps going, restarts it, and then shows
every replica converging to the balances the acknowledged operations imply.
"""

from __future__ import annotations

import contextlib
import pathlib
import random
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import grpc

from ledger.client import LedgerClient, LedgerError, Refused, Unavailable, new_request_id
from ledger.localcluster import ProcessCluster
from ledger.money import format_amount
from ledger.node.status_client import account_statuses
from ledger.v1 import replica_pb2 as pb
from ledger.v1 import replica_pb2_grpc as pb_grpc

Say = Callable[[str], None]

OPENINGS = {"alice": 1_000_00, "bob": 500_00, "carol": 0, "dave": 250_00}
OPERATIONS_PER_TELLER = 40
CONVERGENCE_TIMEOUT_S = 60.0
UNKNOWN_OUTCOME_RETRY_S = 60.0


@dataclass
class Tally:
    """What the tellers were told, kept to compute the balances every replica must reach."""

    expected: dict[str, int] = field(default_factory=lambda: dict(OPENINGS))
    done: int = 0
    refused: int = 0
    duplicates: int = 0
    unknown_then_settled: int = 0
    undecided: int = 0  # outcomes still unknown when the teller gave up
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass(frozen=True)
class NodeView:
    """One replica's account: log length, balance, digest of its log."""

    length: int
    balance: int
    digest: str
    applied: bool


def node_views(address: str) -> dict[str, NodeView] | None:
    """Every account as one node holds it, or None if the node does not answer."""
    accounts = account_statuses(address, timeout_s=2)
    if accounts is None:
        return None
    return {a.account: NodeView(a.chosen_through + 1, a.balance, a.digest.hex()[:8],
                                a.applied_slot == a.chosen_through) for a in accounts}


def teller_work(index: int, servers: list[str], tally: Tally, seed: int,
                stop: threading.Event) -> None:
    """One teller: random deposits and withdrawals, some retried, through its own node first."""
    rng = random.Random(seed)
    preferred = servers[index:] + servers[:index]
    with LedgerClient(preferred, timeout_s=5) as bank:
        for step in range(OPERATIONS_PER_TELLER):
            if stop.is_set():
                return
            account = rng.choice(sorted(OPENINGS))
            deposit = rng.random() < 0.5
            amount = rng.randrange(1_00, (200_00 if deposit else 400_00))
            request_id = new_request_id()
            retry_as_if_timed_out = step % 7 == 3
            for attempt in range(2 if retry_as_if_timed_out else 1):
                try:
                    outcome = settle(bank, account, deposit, amount, request_id, stop)
                except Unavailable:
                    with tally.lock:
                        tally.undecided += 1
                    return
                with tally.lock:
                    if attempt > 0:  # the deliberate resend of an operation already decided
                        if outcome == "duplicate":
                            tally.duplicates += 1
                        continue
                    # Applied exactly once. A first attempt can also come back "duplicate":
                    # the client failed over to another node with the same request id after
                    # the first node's attempt had in fact been chosen.
                    if outcome in ("applied", "unknown-settled", "duplicate"):
                        tally.expected[account] += amount if deposit else -amount
                        tally.done += 1
                        if outcome != "applied":
                            tally.unknown_then_settled += 1
                    elif outcome == "refused":
                        tally.refused += 1
                        tally.done += 1


def settle(bank: LedgerClient, account: str, deposit: bool, amount: int,
           request_id: str, stop: threading.Event | None = None) -> str:
    """Run one operation; an unknown outcome is retried with the same id until definite.

    Returns "applied"; "duplicate" (the ledger says this request id was applied already:
    by an earlier call, or by an attempt the client made before failing over); "refused";
    or "unknown-settled" (a first attempt's outcome was unknown; retrying showed it
    applied exactly once). Raises Unavailable if it stays unknown, or if `stop` is set
    while it is.
    """
    deadline = time.monotonic() + UNKNOWN_OUTCOME_RETRY_S
    retried = False
    while True:
        try:
            method = bank.deposit if deposit else bank.withdraw
            result = method(account, amount, request_id=request_id)
        except Refused:
            return "refused"
        except Unavailable:
            if time.monotonic() > deadline or (stop is not None and stop.is_set()):
                raise
            retried = True
            continue
        if result.duplicate and not retried:
            return "duplicate"
        return "unknown-settled" if retried else "applied"


def convergence_table(cluster: ProcessCluster, tally: Tally
                      ) -> tuple[list[str], bool]:
    """Rows of the side-by-side view, and whether every replica matches the expectation."""
    views = [node_views(address) for address in cluster.addresses]
    header = f"  {'account':<8}{'expected':>12}  " + "".join(
        f"{node.node_id + ': length/balance/digest':<36}" for node in cluster.nodes) + "agree"
    rows = [header]
    all_agree = True
    for account in sorted(OPENINGS):
        cells = []
        seen = set()
        for view in views:
            if view is None:
                cells.append(f"{'(down)':<36}")
                seen.add(None)
                continue
            v = view.get(account)
            if v is None:
                cells.append(f"{'(unknown here)':<36}")
                seen.add(None)
                continue
            cells.append(f"{v.length:>5} {format_amount(v.balance):>12} {v.digest:<12}      ")
            seen.add((v.length, v.balance, v.digest, v.applied))
        expected = tally.expected[account]
        common = next(iter(seen))
        agree = (len(seen) == 1 and common is not None and common[1] == expected
                 and common[3])  # and every replica has applied all it holds
        all_agree &= agree
        rows.append(f"  {account:<8}{format_amount(expected):>12}  " + "".join(cells)
                    + ("yes" if agree else "not yet"))
    return rows, all_agree


def run_demo(say: Say, explain: bool = False, seed: int = 7) -> bool:
    """Run the whole demo; True when every replica converged to the expected balances."""
    base = pathlib.Path(tempfile.mkdtemp(prefix="ledger-demo-"))
    try:
        say(f"Starting a 3-node ledger cluster on 127.0.0.1 (data in {base})...")
        with ProcessCluster(base / "cluster", 3) as cluster:
            say(f"  nodes: {cluster.cluster_flag}")
            return _run(cluster, say, explain, seed)
    finally:
        shutil.rmtree(base, ignore_errors=True)
        say(f"Stopped the cluster and removed {base}.")


def _run(cluster: ProcessCluster, say: Say, explain: bool, seed: int) -> bool:
    servers = cluster.addresses
    for index, (account, opening) in enumerate(sorted(OPENINGS.items())):
        with LedgerClient(servers[index % 3:] + servers[:index % 3]) as bank:
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
    tellers = [threading.Thread(target=teller_work, args=(i, servers, tally, seed + i, stop),
                                daemon=True)
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
    else:
        say("The replicas did NOT converge in time: see the node logs.")
    if explain:
        explain_transactions(cluster, say)
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


def explain_transactions(cluster: ProcessCluster, say: Say) -> None:
    """Trace one account on every node and print the Paxos messages that decide it."""
    account = "explained"
    stubs = []
    channels = [grpc.insecure_channel(a) for a in cluster.addresses]
    try:
        for channel in channels:
            stub = pb_grpc.AdminStub(channel)
            stub.Trace(pb.TraceRequest(account=account, start=True), timeout=5)
            stubs.append(stub)
        say("\nHow Paxos decided three transactions on a fresh account "
            "(from the nodes' own traces):")
        steps = [
            ("open 'explained' through n1", 0,
             lambda bank: bank.open_account(account, 10_00)),
            ("deposit 5.00 through n1 again", 0, lambda bank: bank.deposit(account, 5_00)),
            ("deposit 7.00 through n2", 1, lambda bank: bank.deposit(account, 7_00)),
        ]
        windows = []
        for title, node, action in steps:
            started = time.time_ns() // 1_000_000
            with LedgerClient([cluster.addresses[node]]) as bank, contextlib.suppress(
                LedgerError
            ):
                action(bank)
            time.sleep(0.2)  # let the Learn messages land before the next window
            windows.append((title, started, time.time_ns() // 1_000_000))
        events = []
        for stub in stubs:
            events.extend(stub.Trace(pb.TraceRequest(account=account, stop=True),
                                     timeout=5).events)
        events.sort(key=lambda e: e.at_ms)
        for title, start, end in windows:
            say(f"\n  {title}:")
            for e in events:
                if not start <= e.at_ms <= end or e.direction == "received":
                    continue
                if e.direction == "note":
                    say(f"    {e.node_id}: {e.text}")
                else:
                    target = f"{e.peer_id} (its own acceptor)" if e.peer_id == e.node_id \
                        else e.peer_id
                    say(f"    {e.node_id} -> {target}: {e.text}")
    finally:
        for channel in channels:
            channel.close()
