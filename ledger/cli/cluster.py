"""`ledger cluster up`: a local cluster of real server processes, in the foreground."""

from __future__ import annotations

import pathlib
import signal
import time

import click

from ledger.cli.interrupt import interrupt
from ledger.security.certs import CertificateError
from ledger.tools.localcluster import ProcessCluster


@click.group()
def cluster() -> None:
    """Run a local cluster for development and demos."""


@cluster.command()
@click.option("--nodes", default=3, show_default=True, type=click.IntRange(1, 9))
@click.option("--base-port", default=7001, show_default=True, type=click.IntRange(1, 65527))
@click.option("--data-dir", default="ledger-data", show_default=True,
              type=click.Path(path_type=pathlib.Path),
              help="One subdirectory (and log file) per node; reused across runs.")
@click.option("--insecure", is_flag=True,
              help="Plaintext, every caller anonymous with every role (development only).")
def up(nodes: int, base_port: int, data_dir: pathlib.Path, insecure: bool) -> None:
    """Start NODES servers on 127.0.0.1:BASE-PORT... and keep them running until Ctrl-C.

    With mutual TLS: the certificates are made in DATA-DIR/tls on first start (a CA,
    one per node, and one local client certificate with every client role) and reused
    later; the `export LEDGER_...` lines for clients are printed."""
    local = ProcessCluster(data_dir, nodes, ports=range(base_port, base_port + nodes),
                           tls=not insecure)
    # SIGTERM (a supervisor, `kill`) and SIGHUP (a closed terminal) stop the nodes too,
    # as Ctrl-C does: by default they would end this process and leave them running.
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, interrupt)
    try:
        local.start()
    except (RuntimeError, TimeoutError, CertificateError) as error:
        _stop(local)
        raise click.ClickException(f"the cluster did not come up: {error}") from error
    except KeyboardInterrupt:
        _stop(local)
        click.echo("cluster stopped before it was up", err=True)
        return
    # From here a signal at any instant (even while the lines below are printed, right
    # after "is up") stops the nodes: everything runs inside the try.
    try:
        click.echo(f"cluster {local.cluster_flag} is up; data and logs in {data_dir}/",
                   err=True)
        if local.certs is None:
            click.echo("PLAINTEXT (--insecure): clients need LEDGER_INSECURE=1", err=True)
            click.echo("export LEDGER_INSECURE=1")
        else:
            click.echo(f"mutual TLS, certificates in {local.tls_dir}/; for teller, ledger "
                       "status and other clients, in another shell:", err=True)
            for line in local.certs.export_lines():
                click.echo(line)
        click.echo("Ctrl-C (or SIGTERM) stops every node", err=True)
        reported: set[str] = set()
        while True:
            for node in local.nodes:
                if not node.running and node.node_id not in reported:
                    reported.add(node.node_id)
                    click.echo(f"node {node.node_id} exited; see {node.log_path}", err=True)
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        _stop(local)
        click.echo("cluster stopped", err=True)


def _stop(local: ProcessCluster) -> None:
    for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(signum, signal.SIG_IGN)  # stopping the nodes is not interrupted
    local.stop()
