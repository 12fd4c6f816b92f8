"""`ledger bench`: throughput and latency against etcd, and TLS against plaintext, on this
machine."""

from __future__ import annotations

import json
import pathlib
import tempfile

import click

from ledger.bench.recovery import measure_catch_up, measure_restart
from ledger.bench.runner import SCENARIOS, run_bench, table, tls_ratios


@click.command()
@click.option("--seconds", default=10.0, show_default=True, help="Load per run.")
@click.option("--rounds", default=2, show_default=True, help="Runs per figure (medians).")
@click.option("--scenarios", default=",".join(SCENARIOS), show_default=True,
              help=f"Comma-separated: {', '.join(SCENARIOS)}.")
@click.option("--vs-etcd", is_flag=True,
              help="Also run a 3-member etcd (installed from Debian if missing, as root).")
@click.option("--vs-insecure", is_flag=True,
              help="Also run a plaintext (--insecure) ledger cluster, alternating with the "
                   "TLS one: what TLS costs.")
@click.option("--restart-entries", default=0, metavar="N",
              help="Also time the restart of a node holding N log entries (e.g. 1000000).")
@click.option("--catch-up-entries", default=0, metavar="N",
              help="Also time a node catching up on N entries it missed (e.g. 100000).")
@click.option("--floor", is_flag=True,
              help="Also run the load against a do-nothing Python gRPC server (the floor).")
@click.option("--json", "as_json", is_flag=True, help="Print the raw results as JSON.")
def bench(seconds: float, rounds: int, scenarios: str, vs_etcd: bool, vs_insecure: bool,
          restart_entries: int, catch_up_entries: int, floor: bool, as_json: bool) -> None:
    """Start a 3-node ledger serving mutual TLS (and etcd, or a plaintext ledger) on
    loopback and measure them under the same load."""
    names = [s.strip() for s in scenarios.split(",") if s.strip()]
    unknown = set(names) - set(SCENARIOS)
    if unknown:
        raise click.BadParameter(f"unknown scenarios {sorted(unknown)}", param_hint="--scenarios")

    def say(text: str) -> None:
        click.echo(text, err=True)

    report = run_bench(say, seconds, rounds, names, vs_etcd, floor,
                       vs_insecure) if names else {}
    recovery: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="ledger-bench-recovery-") as base:
        if restart_entries:
            recovery.update(measure_restart(pathlib.Path(base) / "restart", restart_entries,
                                            1_000, say))
        if catch_up_entries:
            recovery.update(measure_catch_up(pathlib.Path(base) / "catch-up",
                                             catch_up_entries, 1_000, say))
    if as_json:
        extra = {"tls_over_insecure": tls_ratios(report)} if vs_insecure else {}
        click.echo(json.dumps({"load": report, "recovery": recovery, **extra}))
        return
    if report:
        click.echo(table(report))
    for key, value in recovery.items():
        click.echo(f"{key:<28}{value:>14.2f}")
