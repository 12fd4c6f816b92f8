"""`ledger serve`: run one storage server in the foreground."""

from __future__ import annotations

import os
import pathlib

import click

from ledger.cli import logs
from ledger.cli.security_options import (
    node_tls,
    node_tls_options,
    revocation_list,
    revocation_option,
)
from ledger.node.cluster import ClusterConfig, ConfigError, parse_address
from ledger.node.driver import NodeFailed
from ledger.security.revocation import RevocationListError
from ledger.server.admission import RecoveryRequired
from ledger.server.config import IdentityMismatch, ServeConfig
from ledger.server.recover import RecoverError
from ledger.storage.base import StorageError


def build_config(
    node_id: str, data_dir: pathlib.Path, cluster: str, listen: str | None, map_size_mb: int,
    tls_dir: pathlib.Path | None, insecure: bool, revoked: pathlib.Path | None = None,
    health_listen: str | None = None, metrics_listen: str | None = None,
) -> ServeConfig:
    """Validate the flags together; raise click.BadParameter naming the bad one."""
    try:
        parsed = ClusterConfig.parse(cluster)
    except ConfigError as error:
        raise click.BadParameter(str(error), param_hint="--cluster") from error
    try:
        parsed.index_of(node_id)
    except ConfigError as error:
        raise click.BadParameter(str(error), param_hint="--node-id") from error
    for address, hint in ((listen, "--listen"), (health_listen, "--health-listen"),
                          (metrics_listen, "--metrics-listen")):
        if address is not None:
            try:
                parse_address(address)
            except ConfigError as error:
                raise click.BadParameter(str(error), param_hint=hint) from error
    if map_size_mb < 1:
        raise click.BadParameter("must be at least 1", param_hint="--map-size-mb")
    tls = node_tls(tls_dir, insecure, node_id)
    return ServeConfig(node_id, data_dir, parsed, listen, map_size_mb, tls=tls,
                       revocation_list=revocation_list(tls_dir, revoked),
                       health_listen=health_listen, metrics_listen=metrics_listen)


@click.command()
@click.option("--node-id", required=True, help="This node's id; it must appear in --cluster.")
@click.option("--data-dir", required=True, type=click.Path(path_type=pathlib.Path),
              help="Where this node keeps its state (created on first start).")
@click.option("--cluster", required=True, metavar="ID=HOST:PORT,...",
              help="Every member of the cluster, this node included, in any order.")
@click.option("--listen", metavar="HOST:PORT",
              help="Bind here instead of this node's --cluster address (for containers).")
@node_tls_options
@revocation_option
@click.option("--health-listen", metavar="HOST:PORT",
              help="Also answer gRPC health checks, and nothing else, in plaintext here "
                   "(Kubernetes' probes cannot present a certificate).")
@click.option("--metrics-listen", metavar="HOST:PORT",
              help="Serve Prometheus metrics at http://HOST:PORT/metrics (plaintext HTTP, "
                   "no authentication: bind 127.0.0.1 or a private interface).")
@click.option("--map-size-mb", default=1024, show_default=True,
              help="Initial LMDB map size; it grows on its own when full.")
@click.option("--check-config", is_flag=True,
              help="Validate the flags, print what they mean, and exit without serving.")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["debug", "info", "warning", "error"]))
@click.option("--log-format", default="text", show_default=True, type=click.Choice(logs.FORMATS),
              help="text: one line per event for people; json: one JSON object per line "
                   "(time, level, node, logger, message) for log pipelines.")
def serve(
    node_id: str, data_dir: pathlib.Path, cluster: str, listen: str | None, map_size_mb: int,
    check_config: bool, log_level: str, log_format: str, tls_dir: pathlib.Path | None,
    insecure_node: bool,
    revocation_list: pathlib.Path | None, health_listen: str | None,
    metrics_listen: str | None,
) -> None:
    """Run a storage server: a Paxos node for every account, until SIGTERM or Ctrl-C.

    The data directory is bound to this node id and the member ids on first start;
    a restart with another id or members is refused. A new directory votes only
    once every other member says it holds no record of this node; a directory the
    cluster knows to be wiped or restored from an older copy is refused, naming
    `ledger recover` (see README, "Losing a disk").
    """
    config = build_config(node_id, data_dir, cluster, listen, map_size_mb, tls_dir,
                          insecure_node, revocation_list, health_listen, metrics_listen)
    if check_config:
        click.echo(f"node {config.node_id} (ballot index {config.node_index} of "
                   f"{config.cluster.size}) listens on {config.bind_address}")
        click.echo(f"cluster {config.cluster.canonical()} fingerprint {config.cluster.fingerprint}")
        click.echo("plaintext (--insecure)" if config.tls is None else
                   f"mutual TLS with {config.tls.certificate_path}; revocation list "
                   f"{config.revocation_list}")
        return
    logs.configure(node_id, log_level, log_format)
    from ledger.server.event_loop import run as run_loop
    from ledger.server.node_server import serve as run

    try:
        profile_to = os.environ.get("LEDGER_PROFILE")  # a developer's cProfile dump
        if profile_to:
            import cProfile

            cProfile.runctx("run_loop(run(config))", globals(), locals(),
                            f"{profile_to}.{node_id}")
        else:
            run_loop(run(config))
    except (IdentityMismatch, RecoveryRequired, RecoverError, RevocationListError) as error:
        raise click.ClickException(str(error)) from error
    except NodeFailed as error:
        raise click.ClickException(f"node {node_id} stopped: {error}") from error
    except StorageError as error:
        raise click.ClickException(f"storage: {error}") from error
    except OSError as error:
        raise click.ClickException(str(error)) from error
