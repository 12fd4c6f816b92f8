"""`ledger dashboard`: serve a live page of a running cluster to a local browser."""

from __future__ import annotations

import signal
import threading

import click

from ledger.cli.interrupt import interrupt
from ledger.cli.security_options import ClientTls, client_options
from ledger.cli.status import DEFAULT_SERVERS
from ledger.dashboard.probe import ClusterProbe
from ledger.dashboard.server import DashboardServer
from ledger.node.cluster import ConfigError


@click.command()
@click.option("--servers", envvar="LEDGER_SERVERS", default=DEFAULT_SERVERS, show_default=True,
              metavar="HOST:PORT,...", help="The nodes to show (env LEDGER_SERVERS).")
@click.option("--listen", default="127.0.0.1:8080", show_default=True, metavar="HOST:PORT",
              help="Where to serve the page (plain HTTP: keep it on 127.0.0.1).")
@client_options
def dashboard(servers: str, listen: str, tls: ClientTls) -> None:
    """Serve a live page of the cluster: the members and their health, work rates, each
    account's applied slot and log digest per replica with agreement highlighted (a
    page of accounts at a time), and for an account you pick, its Paxos messages
    between the nodes as a sequence diagram, from the nodes' own traces.

    It is a client of the cluster: with TLS it needs a certificate whose role may call
    the Admin service (an operator's). Ctrl-C or SIGTERM stops it."""
    addresses = list(dict.fromkeys(s.strip() for s in servers.split(",") if s.strip()))
    if not addresses:
        raise click.BadParameter("no servers given", param_hint="--servers")
    probe = ClusterProbe(addresses, tls.security())
    try:
        server = DashboardServer(probe, listen)
    except (OSError, ConfigError) as error:
        probe.close()
        raise click.ClickException(f"cannot listen on {listen}: {error}") from error
    signal.signal(signal.SIGTERM, interrupt)  # as Ctrl-C: the main thread stops waiting
    try:
        server.start()
        click.echo(f"dashboard of {len(addresses)} nodes at {server.url} (Ctrl-C stops)")
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
        probe.close()
