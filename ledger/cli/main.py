"""The `ledger` command: run and inspect storage servers."""

from __future__ import annotations

import click

from ledger.cli.backup import backup
from ledger.cli.bench import bench
from ledger.cli.certs import certs
from ledger.cli.cluster import cluster
from ledger.cli.dashboard import dashboard
from ledger.cli.demo import demo
from ledger.cli.health import health
from ledger.cli.recover import recover
from ledger.cli.serve import serve
from ledger.cli.status import status


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="paxos-ledger")
def main() -> None:
    """A Paxos-replicated bank ledger: storage servers and operator tools."""


main.add_command(serve)
main.add_command(cluster)
main.add_command(status)
main.add_command(dashboard)
main.add_command(demo)
main.add_command(health)
main.add_command(bench)
main.add_command(backup)
main.add_command(recover)
main.add_command(certs)
