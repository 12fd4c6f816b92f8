"""The TLS flags: a node's (`--tls-dir` or `--insecure`, never from the environment) and
a client's (`--ca/--cert/--key` or LEDGER_CA/LEDGER_CERT/LEDGER_KEY, `--insecure` or
LEDGER_INSECURE=1)."""

from __future__ import annotations

import functools
import pathlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import click

from ledger.security.principal import NotAPrincipal, principal_of_pem
from ledger.security.tls import (
    ENV_CA,
    ENV_CERT,
    ENV_INSECURE,
    ENV_KEY,
    Security,
    SecurityConfigError,
    TlsMaterial,
    client_security,
    load_member,
)

F = TypeVar("F", bound=Callable[..., Any])
REVOCATION_LIST_NAME = "revoked.txt"  # in --tls-dir, unless --revocation-list names another


def node_tls_options(function: F) -> F:
    """--tls-dir and --insecure, for `serve` and `recover`."""
    for option in reversed([
        click.option("--tls-dir", type=click.Path(path_type=pathlib.Path, file_okay=False),
                     help="Where ca.pem, ID.pem and ID-key.pem are (`ledger certs init`): "
                          "mutual TLS on every connection."),
        click.option("--insecure", "insecure_node", is_flag=True,
                     help="Plaintext, and every caller an anonymous principal with every "
                          "role: local development only."),
    ]):
        function = option(function)
    return function


def revocation_option(function: F) -> F:
    return click.option(
        "--revocation-list", type=click.Path(path_type=pathlib.Path, dir_okay=False),
        help=f"Revoked names and serials, re-read on change and on SIGHUP "
             f"[default: TLS_DIR/{REVOCATION_LIST_NAME}].")(function)


def node_tls(tls_dir: pathlib.Path | None, insecure: bool, node_id: str
             ) -> TlsMaterial | None:
    """This node's certificate and CA (None under --insecure); a usage error unless
    exactly one of --tls-dir and --insecure is given, or when the files are not this
    member's."""
    if insecure and tls_dir is not None:
        raise click.UsageError("give --tls-dir or --insecure, not both")
    if tls_dir is None:
        if not insecure:
            raise click.UsageError(
                "no TLS: give --tls-dir DIR (made by `ledger certs init`), or --insecure "
                "for plaintext local development")
        return None
    try:
        material = load_member(tls_dir, node_id)
        principal = principal_of_pem(material.certificate)
    except (SecurityConfigError, NotAPrincipal) as error:
        raise click.BadParameter(str(error), param_hint="--tls-dir") from error
    if not principal.is_member(node_id):
        raise click.BadParameter(
            f"{material.certificate_path} is the certificate of {principal.name} (roles "
            f"{', '.join(sorted(r.value for r in principal.roles))}), not of member {node_id}",
            param_hint="--tls-dir")
    return material


def revocation_list(tls_dir: pathlib.Path | None, given: pathlib.Path | None
                    ) -> pathlib.Path | None:
    if given is not None or tls_dir is None:
        return given
    return tls_dir / REVOCATION_LIST_NAME


@dataclass(frozen=True, slots=True)
class ClientTls:
    """A client's TLS flags, read into settings only when a command dials a node."""

    ca: str | None = None
    cert: str | None = None
    key: str | None = None
    insecure: bool = False

    def flags(self) -> list[str]:
        """The flags as given, to repeat them in a command printed for a retry."""
        given = [("--ca", self.ca), ("--cert", self.cert), ("--key", self.key)]
        return ([word for flag, value in given if value for word in (flag, value)]
                + (["--insecure"] if self.insecure else []))

    def security(self) -> Security:
        """The flags, else the LEDGER_* variables; a usage error saying which to set."""
        try:
            return client_security(self.ca, self.cert, self.key, self.insecure)
        except SecurityConfigError as error:
            raise click.UsageError(str(error)) from error


def client_options(function: F) -> F:
    """--ca, --cert, --key and --insecure; they become one `tls` argument (ClientTls)."""

    @functools.wraps(function)
    def wrapper(*args: Any, ca: str | None, cert: str | None, key: str | None,
                insecure: bool, **kwargs: Any) -> Any:
        return function(*args, tls=ClientTls(ca, cert, key, insecure), **kwargs)

    for option in reversed([
        click.option("--ca", metavar="FILE", help=f"The cluster CA's certificate (env {ENV_CA})."),
        click.option("--cert", metavar="FILE",
                     help=f"This client's certificate (env {ENV_CERT})."),
        click.option("--key", metavar="FILE", help=f"Its private key (env {ENV_KEY})."),
        click.option("--insecure", is_flag=True,
                     help=f"Plaintext, for nodes started with --insecure (env {ENV_INSECURE}=1)."),
    ]):
        wrapper = option(wrapper)
    return wrapper  # type: ignore[return-value]


__all__ = ["ClientTls", "Security", "client_options", "node_tls", "node_tls_options",
           "revocation_list", "revocation_option"]
