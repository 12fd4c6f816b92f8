"""`ledger certs`: make the cluster's CA, its member certificates and client certificates,
and renew the member certificates (the work is in ledger.security.certs and
ledger.security.renewal; this parses flags and prints)."""

from __future__ import annotations

import pathlib
import shlex

import click

from ledger.node.cluster import ClusterConfig, ConfigError
from ledger.security import certs as certificates
from ledger.security import renewal
from ledger.security.principal import CLIENT_ROLES, Role
from ledger.security.tls import ENV_CA, ENV_CERT, ENV_KEY, member_files

DAYS = click.IntRange(1, certificates.MAX_DAYS)
ROLE_NAMES = ", ".join(role.value for role in CLIENT_ROLES)


def parse_cluster(spec: str) -> ClusterConfig:
    """--cluster, or a usage error naming what is wrong with it."""
    try:
        return ClusterConfig.parse(spec)
    except ConfigError as error:
        raise click.BadParameter(str(error), param_hint="--cluster") from None


@click.group()
def certs() -> None:
    """Make the cluster's CA and the certificates it signs (mutual TLS everywhere)."""


@certs.command()
@click.option("--cluster", "cluster_spec", required=True, metavar="ID=HOST:PORT,...",
              help="The members: each gets a certificate valid for its HOST.")
@click.option("--out", "out_dir", required=True, metavar="DIR",
              type=click.Path(file_okay=False, path_type=pathlib.Path),
              help="Where to write; refused if it already holds a CA or any file to write.")
@click.option("--san", "sans", multiple=True, metavar="HOST",
              help="Another host name or IP address every member certificate is valid for "
                   "(repeatable): e.g. localhost, 127.0.0.1, a load balancer's name.")
@click.option("--days", type=DAYS, default=certificates.DEFAULT_LEAF_DAYS, show_default=True,
              help="Lifetime of the member certificates, in days.")
@click.option("--ca-days", type=DAYS, default=certificates.DEFAULT_CA_DAYS, show_default=True,
              help="Lifetime of the CA, in days.")
def init(cluster_spec: str, out_dir: pathlib.Path, sans: tuple[str, ...], days: int,
         ca_days: int) -> None:
    """Make a new CA and a member certificate for every node of --cluster.

    Writes DIR/ca.pem, DIR/ID.pem and DIR/ID-key.pem for every member, and the CA's key
    in DIR/ca-private/ (so DIR's own files can be shipped to the nodes without it).
    """
    cluster = parse_cluster(cluster_spec)
    try:
        written = certificates.write_init(out_dir, cluster, sans, days, ca_days)
    except certificates.CertificateError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"wrote a new CA ({ca_days} days) and {cluster.size} member certificates "
               f"({days} days) in {out_dir}:")
    for path in written:
        click.echo(f"  {path}")
    click.echo("\nnext steps:")
    click.echo("  each node needs three files in its --tls-dir: ca.pem, ID.pem and ID-key.pem")
    for member in cluster.members:
        ca, certificate, key = member_files(out_dir, member.node_id)
        hosts = ", ".join(certificates.member_hosts(member.host, sans))
        click.echo(f"    {member.node_id} (valid for {hosts}): {ca.name}, {certificate.name}, "
                   f"{key.name}")
    private = out_dir / certificates.CA_PRIVATE_DIR
    click.echo(f"  keep {private}/ private and off the nodes: whoever holds the CA key can "
               "pass for any node or client")
    click.echo(f"  issue a client certificate: ledger certs issue NAME --role ROLE "
               f"--ca-dir {out_dir}   (roles: {ROLE_NAMES})")


@certs.command()
@click.argument("name")
@click.option("--role", "role_names", multiple=True, required=True, metavar="ROLE",
              help=f"A role the client has (repeatable, at least one): {ROLE_NAMES}.")
@click.option("--ca-dir", required=True, metavar="DIR",
              type=click.Path(file_okay=False, path_type=pathlib.Path),
              help="The CA's directory (from `ledger certs init`): its key is in "
                   "DIR/ca-private/ca-key.pem (or DIR/ca-key.pem).")
@click.option("--out", "out_dir", default=".", show_default=True, metavar="DIR",
              type=click.Path(file_okay=False, path_type=pathlib.Path),
              help="Where to write NAME.pem and NAME-key.pem.")
@click.option("--days", type=DAYS, default=certificates.DEFAULT_LEAF_DAYS, show_default=True,
              help="Lifetime of the certificate, in days.")
def issue(name: str, role_names: tuple[str, ...], ca_dir: pathlib.Path, out_dir: pathlib.Path,
          days: int) -> None:
    """Issue a client certificate for NAME, signed by the CA in --ca-dir.

    NAME may not be a member id, `ca` or `anonymous`; the role member is refused (member
    certificates come only from `ledger certs init` and `ledger certs renew`).
    """
    try:
        roles = [Role.parse(text) for text in role_names]
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--role") from None
    try:
        issued = certificates.write_client(ca_dir, name, roles, out_dir, days)
    except certificates.CertificateError as error:
        raise click.ClickException(str(error)) from None
    role_list = ", ".join(dict.fromkeys(role.value for role in roles))
    click.echo(f"wrote a client certificate for {name} ({role_list}; {days} days):")
    for path in issued.paths:
        click.echo(f"  {path}")
    click.echo(f"its serial, to revoke it: {issued.serial_entry}")
    click.echo("\nto use it:")
    ca, certificate, key = (shlex.quote(str(path)) for path in
                            (issued.ca_path, issued.certificate_path, issued.key_path))
    click.echo(f"  export {ENV_CA}={ca} {ENV_CERT}={certificate} {ENV_KEY}={key}")


@certs.command()
@click.option("--ca-dir", required=True, metavar="DIR",
              type=click.Path(file_okay=False, path_type=pathlib.Path),
              help="The CA's directory (from `ledger certs init`): the member certificates "
                   "DIR/ID.pem and DIR/ID-key.pem are replaced there.")
@click.option("--cluster", "cluster_spec", required=True, metavar="ID=HOST:PORT,...",
              help="The members, at their current addresses: each new certificate is valid "
                   "for its member's HOST. Every ID must be a member the CA made.")
@click.option("--san", "sans", multiple=True, metavar="HOST",
              help="Another host name or IP address every renewed certificate is valid for "
                   "(repeatable). The old certificates' extras are not carried over.")
@click.option("--days", type=int, default=certificates.DEFAULT_LEAF_DAYS, show_default=True,
              help=f"Lifetime of the renewed certificates, in days (1 to "
                   f"{certificates.MAX_DAYS}, and not past the CA's expiry).")
@click.option("--member", "only", multiple=True, metavar="ID",
              help="Renew only this member's certificate (repeatable); default: every member.")
def renew(ca_dir: pathlib.Path, cluster_spec: str, sans: tuple[str, ...], days: int,
          only: tuple[str, ...]) -> None:
    """Re-issue member certificates, with new keys, from the existing CA in --ca-dir.

    For expiring certificates or a node that moved to a new address. Each replaced pair is
    kept as DIR/ID.pem.previous and DIR/ID-key.pem.previous. The CA does not change, so
    clients' certificates stay valid. A member the CA did not make is refused: a new member
    means a new cluster configuration.
    """
    cluster = parse_cluster(cluster_spec)
    try:
        renewed = renewal.renew_members(ca_dir, cluster, sans, days, only)
    except certificates.CertificateError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"renewed {len(renewed)} member certificate{'s' * (len(renewed) != 1)} "
               f"({days} days) in {ca_dir}, signed by the same CA:")
    for member in renewed:
        click.echo(f"  {member.node_id} (valid for {', '.join(member.hosts)}) until "
                   f"{member.not_after:%Y-%m-%d %H:%M} UTC: {member.certificate_path}, "
                   f"{member.key_path}")
    kept = [member.node_id for member in renewed if member.kept_previous]
    if kept:
        click.echo(f"the replaced pairs are kept as ID.pem{renewal.PREVIOUS_SUFFIX} and "
                   f"ID-key.pem{renewal.PREVIOUS_SUFFIX} ({', '.join(kept)})")
    click.echo("\nnext step:")
    click.echo("  give each node its new ID.pem and ID-key.pem in its --tls-dir (if that is "
               "not this directory)")
    click.echo("  restart each node, one at a time, to use its new certificate (clients' "
               "certificates are unaffected: the CA is the same)")
