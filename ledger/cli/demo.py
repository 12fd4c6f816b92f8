"""`ledger demo`: see a replicated ledger survive a crash and converge."""

from __future__ import annotations

import pathlib
import sys

import click

from ledger.client import LedgerError
from ledger.demo import run_demo


@click.command()
@click.option("--explain", is_flag=True,
              help="Also show, from the nodes' own traces, the Paxos messages behind a few "
                   "transactions.")
@click.option("--html", type=click.Path(dir_okay=False, writable=True, path_type=pathlib.Path),
              help="With --explain: also write those transactions as sequence diagrams, "
                   "one self-contained page to open in a browser.")
@click.option("--seed", default=7, show_default=True, help="Seed for the tellers' choices.")
def demo(explain: bool, html: pathlib.Path | None, seed: int) -> None:
    """Start a local 3-node cluster, run tellers through it, kill and restart a node, and
    show every replica converging. Exits 0 only if they all converge to the expected
    balances."""
    if html is not None and not explain:
        raise click.UsageError("--html writes what --explain shows: give both")
    if html is not None and not html.resolve().parent.is_dir():
        raise click.BadParameter(f"no directory {html.resolve().parent} to write it in",
                                 param_hint="--html")

    interactive = sys.stdout.isatty()

    def say(text: str) -> None:
        if text.startswith("\r"):  # a progress line: rewritten in place on a terminal
            click.echo(text if interactive else text[1:], nl=not interactive)
        else:
            click.echo(text)

    try:
        converged = run_demo(say, explain=explain, seed=seed, html=html)
    except (RuntimeError, TimeoutError, LedgerError) as error:  # e.g. a node did not start
        raise click.ClickException(f"the demo could not run: {error}") from error
    if not converged:
        raise SystemExit(1)
