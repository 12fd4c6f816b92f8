"""`ledger backup`: a consistent copy of one node's state, laid out as a data directory."""

from __future__ import annotations

import pathlib

import click
import grpc

from ledger.cli.security_options import ClientTls, client_options
from ledger.client.admin import BackupIncomplete, fetch_backup
from ledger.node.cluster import ConfigError, parse_address
from ledger.security.tls import Security, handshake_hint
from ledger.storage.base import StorageError
from ledger.storage.lmdb.backup import Backup, backup_stopped_node, receive_backup

MIB = 1 << 20
PROGRESS_STEPS = 10  # lines of progress for a whole backup, at most


@click.command()
@click.option("--server", metavar="HOST:PORT",
              help="Back up this running node through its Admin API; it keeps serving.")
@click.option("--data-dir", type=click.Path(path_type=pathlib.Path),
              help="Back up the data directory of a node that is not running.")
@click.option("--out", required=True, type=click.Path(path_type=pathlib.Path),
              help="The backup's directory: new, or empty.")
@click.option("--timeout", default=3600.0, show_default=True, type=click.FloatRange(min=1),
              help="Seconds the whole backup may take (with --server).")
@client_options
def backup(server: str | None, data_dir: pathlib.Path | None, out: pathlib.Path,
           timeout: float, tls: ClientTls) -> None:
    """Copy one node's state, consistent at one moment, into OUT, laid out as a data
    directory. Give exactly one of --server (a running node) or --data-dir (a stopped one).

    The copy is marked so that `ledger serve` refuses it until `ledger recover` has
    brought it up to date: a restored copy must never vote with its old promises.
    """
    if (server is None) == (data_dir is None):
        raise click.UsageError("give exactly one of --server HOST:PORT (a running node) or "
                               "--data-dir DIR (a stopped node)")
    try:
        if server is not None:
            made = _from_server(server, str(out), timeout, tls.security())
        else:
            assert data_dir is not None
            click.echo(f"copying the data directory {data_dir} ...")
            made = backup_stopped_node(str(data_dir), str(out))
    except StorageError as error:  # BackupError among them: refused or failed, nothing left
        raise click.ClickException(str(error)) from error
    except OSError as error:
        raise click.ClickException(f"cannot write the backup: {error}") from error
    _report(made, data_dir)


def _from_server(server: str, out: str, timeout_s: float, security: Security) -> Backup:
    try:
        parse_address(server)
    except ConfigError as error:
        raise click.BadParameter(str(error), param_hint="--server") from error
    shown = _Progress()
    try:
        return receive_backup(out, lambda path: fetch_backup(server, path, security, timeout_s,
                                                                 shown))
    except grpc.RpcError as error:
        hint = handshake_hint(error.details() or "")
        raise click.ClickException(f"{server}: {error.code().name}: {error.details()}"
                                   + (f" ({hint})" if hint else "")) from error
    except BackupIncomplete as error:
        raise click.ClickException(f"{error}; nothing was kept") from error


class _Progress:
    """Prints the bytes received every tenth of the way, and at the end."""

    def __init__(self) -> None:
        self._shown_steps = 0

    def __call__(self, done_bytes: int, total_bytes: int) -> None:
        steps = PROGRESS_STEPS if done_bytes >= total_bytes else (
            done_bytes * PROGRESS_STEPS // max(total_bytes, 1))
        if steps > self._shown_steps:
            self._shown_steps = steps
            click.echo(f"received {done_bytes / MIB:.1f} of {total_bytes / MIB:.1f} MiB")


def _report(made: Backup, data_dir: pathlib.Path | None) -> None:
    identity = made.identity
    cluster = ",".join(f"{node}={address}" for node, address in identity.cluster)
    target = data_dir if data_dir is not None else "DATA_DIR"
    click.echo(f"copied {made.size_bytes} bytes ({made.size_bytes / MIB:.1f} MiB): a backup "
               f"of node {identity.node_id} in {made.directory}")
    click.echo(f"to restore: stop the node, put {made.directory} in place of its data "
               f"directory {target}, run `ledger recover --node-id {identity.node_id} "
               f"--data-dir {target} --cluster {cluster} --tls-dir TLS_DIR`, then `ledger "
               f"serve`")
