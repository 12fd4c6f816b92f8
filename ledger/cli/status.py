"""`ledger status`: every node's view of every account, side by side."""

from __future__ import annotations

import json
import time

import click
import grpc

from ledger.cli.security_options import ClientTls, client_options
from ledger.client import BankAudit, LedgerClient, LedgerError
from ledger.client.admin import status_pages
from ledger.client.money import format_amount
from ledger.security.tls import Security, handshake_hint
from ledger.tools.replicas import NodeView, agreement, view_of
from ledger.v1 import replica_pb2 as pb

DEFAULT_SERVERS = "127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003"

#: Counters shown beside a node when they are not zero: what it refused or stopped on.
TROUBLE = {
    "peer_messages_dropped": "malformed peer messages dropped",
    "alarms": "accounts quarantined on an ALARM (see the node's log)",
    "unreadable_accounts": "accounts whose records are damaged on disk (quarantined here; "
                           "run `ledger recover` on this node)",
    "waiting_for_members": "not voting yet: waiting for the other members to confirm its "
                           "data directory is current",
    "recovering_accounts": "accounts fenced by `ledger recover`, catching up before they vote",
    "marked_for_recovery": "a damaged record: its next start must go through `ledger recover`",
}


def fetch_status(address: str, timeout_s: float, security: Security
                 ) -> list[pb.StatusReply] | str:
    """Every page of a node's status, or why it could not be had."""
    try:
        return status_pages(address, timeout_s, security)
    except grpc.RpcError as error:
        if error.code() in (grpc.StatusCode.PERMISSION_DENIED,
                            grpc.StatusCode.UNAUTHENTICATED):
            return f"refused ({error.code().name}: {error.details()})"
        hint = handshake_hint(error.details() or "")
        return f"unreachable ({error.code().name})" + (f": {hint}" if hint else "")


def fetch_audit(address: str, timeout_s: float, security: Security) -> BankAudit | str:
    """A node's audit totals (its consistent cut of the bank), or why it could not be had."""
    try:
        with LedgerClient([address], timeout_s=timeout_s, security=security) as bank:
            return bank.audit(totals_only=True)
    except LedgerError as error:
        return f"{error.status}: {error}"


def audit_json(audit: BankAudit | str) -> dict[str, object]:
    if isinstance(audit, str):
        return {"error": audit}
    return {"accounts": audit.accounts, "balances": audit.balances,
            "in_flight": audit.in_flight, "transfers_in_flight": audit.transfers_in_flight,
            "total": audit.total}


def audit_line(audit: BankAudit | str) -> str:
    if isinstance(audit, str):
        return f"audit unavailable ({audit})"
    return (f"audit: balances {format_amount(audit.balances)} + in flight "
            f"{format_amount(audit.in_flight)} ({audit.transfers_in_flight} transfers) = "
            f"{format_amount(audit.total)}")


@click.command()
@click.option("--servers", envvar="LEDGER_SERVERS", default=DEFAULT_SERVERS, show_default=True,
              metavar="HOST:PORT,...", help="The nodes to ask (env LEDGER_SERVERS).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@click.option("--timeout", default=3.0, show_default=True, type=click.FloatRange(min=0.1),
              help="Seconds per node.")
@click.option("--watch", is_flag=True,
              help="Redraw every --interval seconds until Ctrl-C (with --json: a document "
                   "per line).")
@click.option("--interval", default=2.0, show_default=True, type=click.FloatRange(min=0.2),
              help="Seconds between redraws with --watch.")
@client_options
def status(servers: str, as_json: bool, timeout: float, watch: bool, interval: float,
           tls: ClientTls) -> None:
    """Each node, whether it answers, how many accounts it knows, its audit (the
    balances it has applied plus the money in transfers still in flight, one
    consistent cut: the total is what was opened plus deposited minus withdrawn), and
    per account the last log slot it applied ("pos"), its balance and log digest:
    equal rows mean the replicas agree.

    'agree' compares the nodes that answered; a node that is down is shown as such."""
    addresses = list(dict.fromkeys(s.strip() for s in servers.split(",") if s.strip()))
    if not addresses:
        raise click.BadParameter("no servers given", param_hint="--servers")
    security = tls.security()
    if not watch:
        show(addresses, timeout, security, as_json)
        return
    try:
        while True:
            if not as_json:
                click.clear()  # (only on a terminal)
                click.echo(time.strftime("%H:%M:%S") + f"  every {interval:g}s; Ctrl-C stops\n")
            show(addresses, timeout, security, as_json)
            time.sleep(interval)
    except KeyboardInterrupt:
        pass


def show(addresses: list[str], timeout: float, security: Security, as_json: bool) -> None:
    """One reading of every node, printed as a table (or one JSON document)."""
    pages = {address: fetch_status(address, timeout, security) for address in addresses}
    audits = {address: fetch_audit(address, timeout, security)
              for address, view in pages.items() if not isinstance(view, str)}
    nodes: dict[str, dict[str, object]] = {}
    views: list[NodeView | None] = []
    accounts: dict[str, dict[str, dict[str, object]]] = {}
    for address, view in pages.items():
        if isinstance(view, str):
            nodes[address] = {"reachable": False, "error": view}
            views.append(None)
            continue
        known = [a for page in view for a in page.accounts]
        counters = view[-1].counters
        nodes[address] = {"reachable": True, "node_id": view[0].node_id, "accounts": len(known),
                          **{key: counters.get(key, 0) for key in TROUBLE},
                          "audit": audit_json(audits[address])}
        views.append(view_of(known))
        for a in known:
            accounts.setdefault(a.account, {})[address] = {
                "applied_position": a.applied_slot, "chosen_through": a.chosen_through,
                "balance": a.balance if a.opened else None, "digest": a.digest.hex()[:8],
            }
    reachable = [address for address in addresses if nodes[address]["reachable"]]
    agree = agreement(views)
    if as_json:
        click.echo(json.dumps({"nodes": nodes, "accounts": accounts, "agree": agree}))
        return
    address_width = max(len(a) for a in addresses)
    for address, node in nodes.items():
        state = (f"node {node['node_id']}, {node['accounts']} accounts" if node["reachable"]
                 else node["error"])
        trouble = [f"{node[key]} {label}" for key, label in TROUBLE.items() if node.get(key)]
        click.echo(f"{address:<{address_width}}  {state}"
                   + ("" if not trouble else "; " + ", ".join(trouble)))
        if node["reachable"]:
            click.echo(f"{'':<{address_width}}  {audit_line(audits[address])}")
    if not accounts:
        click.echo("no accounts")
        return
    rows = []
    for account in sorted(accounts):
        cells = []
        for address in addresses:
            cell = accounts[account].get(address)
            if cell is None:
                cells.append("down" if not nodes[address]["reachable"] else "-")
                continue
            balance = "" if cell["balance"] is None else format_amount(int(cell["balance"]))
            cells.append(f"pos {cell['applied_position']} {balance} {cell['digest']}")
        rows.append([account, *cells, "yes" if agree[account] else "NO"])
    header = ["account", *addresses, "agree"]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    click.echo()
    for row in [header, *rows]:
        first = f"{row[0]:<{widths[0]}}"
        rest = "  ".join(f"{cell:>{width}}" for cell, width in zip(row[1:-1], widths[1:-1],
                                                                     strict=True))
        click.echo(f"{first}  {rest}  {row[-1]}")
    down = len(addresses) - len(reachable)
    if down:
        click.echo(f"\n{down} of {len(addresses)} nodes did not answer: 'agree' compares the "
                   f"{len(reachable)} that did.")
