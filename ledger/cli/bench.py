"""`ledger bench`: throughput and latency against etcd on this machine."""

from __future__ import annotations

import json

import click

from ledger.bench.runner import SCENARIOS, run_bench, table


@click.command()
@click.option("--seconds", default=10.0, show_default=True, help="Load per run.")
@click.option("--rounds", default=2, show_default=True, help="Runs per figure (medians).")
@click.option("--scenarios", default=",".join(SCENARIOS), show_default=True,
              help=f"Comma-separated: {', '.join(SCENARIOS)}.")
@click.option("--vs-etcd", is_flag=True,
              help="Also run a 3-member etcd (installed from Debian if missing, as root).")
@click.option("--json", "as_json", is_flag=True, help="Print the raw results as JSON.")
def bench(seconds: float, rounds: int, scenarios: str, vs_etcd: bool, as_json: bool) -> None:
    """Start a 3-node ledger (and etcd) on loopback and measure them under the same load."""
    names = [s.strip() for s in scenarios.split(",") if s.strip()]
    unknown = set(names) - set(SCENARIOS)
    if unknown:
        raise click.BadParameter(f"unknown scenarios {sorted(unknown)}", param_hint="--scenarios")
    report = run_bench(lambda text: click.echo(text, err=True), seconds, rounds, names, vs_etcd)
    click.echo(json.dumps(report) if as_json else table(report))
