"""`ledger health`: ask a node's standard gRPC health service whether it serves."""

from __future__ import annotations

import click
import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ledger.cli.security_options import ClientTls, client_options
from ledger.security.tls import handshake_hint


@click.command()
@click.option("--server", default="127.0.0.1:7001", show_default=True, metavar="HOST:PORT")
@click.option("--timeout", default=3.0, show_default=True, help="Seconds.")
@client_options
def health(server: str, timeout: float, tls: ClientTls) -> None:
    """Exit 0 if the node at SERVER is serving, 1 otherwise (for container health checks).

    Ask the node's own port with a certificate, or its plaintext `--health-listen` port
    with --insecure."""
    with tls.security().channel(server) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=timeout)
        except grpc.RpcError as error:
            hint = handshake_hint(error.details() or "")
            raise click.ClickException(f"{server}: {error.code().name}"
                                       + (f" ({hint})" if hint else "")) from error
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    click.echo(f"{server}: {status}")
    if reply.status != health_pb2.HealthCheckResponse.SERVING:
        raise SystemExit(1)
