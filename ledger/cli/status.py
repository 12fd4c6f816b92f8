"""`ledger status`: every node's view of every account, side by side."""

from __future__ import annotations

import json

import click
import grpc

from ledger.v1 import replica_pb2 as pb
from ledger.v1 import replica_pb2_grpc as pb_grpc

DEFAULT_SERVERS = "127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003"


def fetch_status(address: str, timeout_s: float) -> list[pb.StatusReply] | str:
    """Every page of a node's status, or the error that prevented it."""
    pages = []
    after = ""
    with grpc.insecure_channel(address) as channel:
        stub = pb_grpc.AdminStub(channel)
        try:
            while True:
                page = stub.Status(pb.StatusRequest(after=after), timeout=timeout_s)
                pages.append(page)
                if page.complete or not page.accounts:
                    return pages
                after = page.accounts[-1].account
        except grpc.RpcError as error:
            return f"unreachable ({error.code().name})"


@click.command()
@click.option("--servers", envvar="LEDGER_SERVERS", default=DEFAULT_SERVERS, show_default=True,
              metavar="HOST:PORT,...", help="The nodes to ask (env LEDGER_SERVERS).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@click.option("--timeout", default=3.0, show_default=True, help="Seconds per node.")
def status(servers: str, as_json: bool, timeout: float) -> None:
    """Show each node, whether it answers, and per account its log position and digest."""
    addresses = [s.strip() for s in servers.split(",") if s.strip()]
    views = {address: fetch_status(address, timeout) for address in addresses}
    table: dict[str, dict[str, tuple[int, int, str]]] = {}
    nodes = {}
    for address, view in views.items():
        if isinstance(view, str):
            nodes[address] = view
            continue
        nodes[address] = f"node {view[0].node_id}"
        for page in view:
            for account in page.accounts:
                table.setdefault(account.account, {})[address] = (
                    account.applied_position, account.chosen_through, account.digest.hex()[:12])
    if as_json:
        click.echo(json.dumps({"nodes": nodes, "accounts": {
            acct: {addr: {"applied": a, "chosen_through": c, "digest": d}
                   for addr, (a, c, d) in per.items()} for acct, per in table.items()}}))
        return
    for address, state in nodes.items():
        click.echo(f"{address:<22} {state}")
    if not table:
        click.echo("no accounts")
        return
    header = f"{'account':<24}" + "".join(f"{a:>28}" for a in addresses) + "  agree"
    click.echo(header)
    for account in sorted(table):
        per = table[account]
        cells = [per.get(a) for a in addresses]
        text = "".join(
            f"{'-':>28}" if c is None else f"{f'pos {c[0]} {c[2]}':>28}" for c in cells)
        agree = len({c for c in cells if c is not None}) == 1 and None not in cells
        click.echo(f"{account:<24}{text}  {'yes' if agree else 'NO'}")
