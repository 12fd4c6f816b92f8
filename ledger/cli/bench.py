"""`ledger bench`: throughput and latency against etcd, and TLS against plaintext, on this
machine."""

from __future__ import annotations

import json
import pathlib
import sys
import tempfile

import click

from ledger.bench.recovery import measure_catch_up, measure_restart
from ledger.bench.runner import SCENARIOS, run_bench, table, tls_ratios, variant_ratios
from ledger.bench.spy import INSTALL, Profiler, py_spy, summarise_recordings


@click.command()
@click.option("--seconds", default=10.0, show_default=True, help="Load per run.")
@click.option("--rounds", default=2, show_default=True, help="Runs per figure (medians).")
@click.option("--scenarios", default=",".join(SCENARIOS), show_default=True,
              help=f"Comma-separated: {', '.join(SCENARIOS)}. any-node sends each write to "
                   "one of the three nodes (etcd: members) at random, not following leader "
                   "hints; client is 64 threads calling LedgerClient.deposit in one process "
                   "(against etcd's unary figure); transfer moves 1 between accounts "
                   "(ledger only: compare with spread's deposits); the others send "
                   "everything to the first.")
@click.option("--vs-etcd", is_flag=True,
              help="Also run a 3-member etcd (installed from Debian if missing, as root).")
@click.option("--vs-insecure", is_flag=True,
              help="Also run a plaintext (--insecure) ledger cluster, alternating with the "
                   "TLS one: what TLS costs.")
@click.option("--vs-metrics", is_flag=True,
              help="Also run a ledger cluster serving metrics, scraped and read as `ledger "
                   "dashboard` does every second, with a loaded account traced, alternating "
                   "with the plain one: what watching costs.")
@click.option("--restart-entries", default=0, metavar="N",
              help="Also time the restart of a node holding N log entries (e.g. 1000000).")
@click.option("--catch-up-entries", default=0, metavar="N",
              help="Also time a node catching up on N entries it missed (e.g. 100000).")
@click.option("--floor", is_flag=True,
              help="Also run the load against a do-nothing Python gRPC server (the floor).")
@click.option("--profile", "profile_dir", type=click.Path(file_okay=False, path_type=pathlib.Path),
              metavar="DIR",
              help="Run py-spy (pip install py-spy) on the TLS ledger's first node during "
                   "each scenario's first round: raw stacks in DIR/<scenario>-n1.txt, where "
                   "its CPU went in DIR/<scenario>-n1-summary.txt (printed too).")
@click.option("--json", "as_json", is_flag=True, help="Print the raw results as JSON.")
def bench(seconds: float, rounds: int, scenarios: str, vs_etcd: bool, vs_insecure: bool,
          vs_metrics: bool, restart_entries: int, catch_up_entries: int, floor: bool,
          profile_dir: pathlib.Path | None, as_json: bool) -> None:
    """Start a 3-node ledger serving mutual TLS (and etcd, or a plaintext ledger) on
    loopback and measure them under the same load."""
    names = [s.strip() for s in scenarios.split(",") if s.strip()]
    unknown = set(names) - set(SCENARIOS)
    if unknown:
        raise click.BadParameter(f"unknown scenarios {sorted(unknown)}", param_hint="--scenarios")
    profiler = None
    if profile_dir is not None:
        executable = py_spy()
        if executable is None:
            raise click.UsageError(f"--profile needs py-spy, which is not installed here: "
                                   f"{INSTALL}")
        profiler = Profiler(profile_dir, executable)

    def say(text: str) -> None:
        click.echo(text, err=True)

    report = run_bench(say, seconds, rounds, names, vs_etcd, floor, vs_insecure, vs_metrics,
                       profiler) if names else {}
    profiles = summarise_recordings(profiler.recordings if profiler else [])
    recovery: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="ledger-bench-recovery-") as base:
        if restart_entries:
            recovery.update(measure_restart(pathlib.Path(base) / "restart", restart_entries,
                                            1_000, say))
        if catch_up_entries:
            recovery.update(measure_catch_up(pathlib.Path(base) / "catch-up",
                                             catch_up_entries, 1_000, say))
    if as_json:
        extra: dict[str, object] = {"tls_over_insecure": tls_ratios(report)} if vs_insecure \
            else {}
        if vs_metrics:
            extra["watched_over_plain"] = variant_ratios(report, "metrics")
        if profiler is not None:
            extra["profile"] = profiles.reports
        click.echo(json.dumps({"load": report, "recovery": recovery, **extra}))
    else:
        if report:
            click.echo(table(report))
        for key, value in recovery.items():
            click.echo(f"{key:<28}{value:>14.2f}")
        for text in profiles.texts:
            click.echo(text)
    for error in profiles.errors:
        click.echo(f"error: {error}", err=True)
    if profiles.errors:
        sys.exit(1)
