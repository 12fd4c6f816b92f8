"""`ledger recover`: bring a node whose data directory was lost, rolled back or is
untrusted back into its cluster safely (see ledger.server.recover)."""

from __future__ import annotations

import pathlib

import click

from ledger.bank.state_machine import LedgerStateMachine
from ledger.cli.security_options import node_tls_options, revocation_option
from ledger.cli.serve import build_config
from ledger.security.revocation import RevocationListError
from ledger.server.recover import RecoverError, needs_recovery
from ledger.server.recover import recover as run_recover
from ledger.storage.base import StorageError


@click.command()
@click.option("--node-id", required=True, help="The node to recover; it must be stopped.")
@click.option("--data-dir", required=True, type=click.Path(path_type=pathlib.Path),
              help="Its data directory: wiped, restored from a backup, damaged, or missing.")
@click.option("--cluster", required=True, metavar="ID=HOST:PORT,...",
              help="Every member of the cluster, as `ledger serve` is given it.")
@click.option("--listen", metavar="HOST:PORT",
              help="Answer other members' recoveries here instead of this node's --cluster "
                   "address (containers), as `ledger serve --listen`.")
@node_tls_options
@revocation_option
@click.option("--if-needed", is_flag=True,
              help="Recover only if `ledger serve` would refuse the directory; else change "
                   "nothing and exit 0 (for an init container).")
def recover(node_id: str, data_dir: pathlib.Path, cluster: str, listen: str | None,
            if_needed: bool, tls_dir: pathlib.Path | None, insecure_node: bool,
            revocation_list: pathlib.Path | None) -> None:
    """Make a node whose disk was lost, rolled back or damaged safe to serve again.

    Keeps the chosen values of the old directory that verify, registers a new
    incarnation with every other member (each must be reachable), fences every slot
    a lost promise or vote may have touched, then exits 0: start the node with
    `ledger serve` as usual. The old directory is kept beside the new one, renamed.
    """
    config = build_config(node_id, data_dir, cluster, listen, 1024, tls_dir, insecure_node,
                          revocation_list)

    def say(line: str) -> None:
        click.echo(line, err=True)

    try:
        if if_needed:
            reason = needs_recovery(config.node_id, str(config.data_dir), config.cluster,
                                    LedgerStateMachine.TABLES, say, tls=config.tls)
            if reason is None:
                click.echo(f"node {node_id}'s data directory needs no recovery")
                return
            say(f"recovering: {reason}")
        done = run_recover(config.node_id, str(config.data_dir), config.cluster,
                           LedgerStateMachine.TABLES, say, tls=config.tls,
                           revocation_list=config.revocation_list,
                           bind_address=config.bind_address)
    except (RecoverError, StorageError, OSError, RevocationListError) as error:
        raise click.ClickException(f"recovery of node {node_id} failed: {error}") from error
    except KeyboardInterrupt:
        raise click.ClickException(
            "interrupted: the data directory was not replaced; run `ledger recover` again "
            "(members that already recorded the new incarnation refuse the old one)") from None
    click.echo(f"node {node_id} recovered as incarnation {done.incarnation}: kept "
               f"{done.values_kept:,} chosen values, fenced {done.fences:,} accounts, "
               f"round floor {done.floor}")
    if done.kept_old_at is not None:
        click.echo(f"the old directory is at {done.kept_old_at} (delete it once the node "
                   f"has caught up)")
    security = "--insecure" if tls_dir is None else f"--tls-dir {tls_dir}"
    click.echo(f"now start it: ledger serve --node-id {node_id} --data-dir {data_dir} "
               f"--cluster {cluster} {security}")
