"""`ledger demo --explain`: the Paxos messages behind a few transactions, from the
nodes' own traces (Admin.Trace)."""

from __future__ import annotations

import contextlib
import pathlib
import time

from ledger.client import LedgerClient, LedgerError
from ledger.demo.tellers import Say
from ledger.tools.localcluster import ProcessCluster
from ledger.tools.page import render
from ledger.tools.sequence import Diagram, diagram
from ledger.v1 import replica_pb2 as pb
from ledger.v1 import replica_pb2_grpc as pb_grpc


def explain_transactions(cluster: ProcessCluster, say: Say) -> list[Diagram]:
    """Trace one account on every node and print the Paxos messages that decide it;
    return them as one sequence diagram per transaction."""
    account = "explained"
    stubs = []
    security = cluster.security
    channels = [security.channel(a) for a in cluster.addresses]
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
            with LedgerClient([cluster.addresses[node]], security=security) as bank, \
                    contextlib.suppress(LedgerError):
                action(bank)
            time.sleep(0.2)  # let the Learn messages land before the next window
            windows.append((title, started, time.time_ns() // 1_000_000))
        events = []
        for stub in stubs:
            events.extend(stub.Trace(pb.TraceRequest(account=account, stop=True),
                                     timeout=5).events)
        events.sort(key=lambda e: e.at_ms)
        nodes = [node.node_id for node in cluster.nodes]
        diagrams = [diagram(title[0].upper() + title[1:], nodes, events, start, end)
                    for title, start, end in windows]
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
        return diagrams
    finally:
        for channel in channels:
            channel.close()


def write_page(path: pathlib.Path, diagrams: list[Diagram]) -> None:
    """The diagrams as one self-contained page a reader can open (no server needed)."""
    intro = ("How a 3-node ledger decided three transactions on a fresh account, drawn from "
             "the nodes' own traces (`ledger demo --explain`): the first runs both phases "
             "of Paxos, the next ones take the fast path of the node that won the account.")
    data = {"intro": intro, "diagrams": [d.as_json() for d in diagrams]}
    path.write_text(render("How Paxos decided the demo's transactions", data),
                    encoding="utf-8")
