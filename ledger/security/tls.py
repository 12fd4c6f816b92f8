"""How a process dials and listens: mutual TLS from a cluster CA's files, or plaintext
only when someone asks for it by name (`--insecure`).

Clients read `--ca/--cert/--key` or LEDGER_CA, LEDGER_CERT, LEDGER_KEY (and
`--insecure` or LEDGER_INSECURE=1); those are client settings only. A node reads
`ca.pem`, `ID.pem` and `ID-key.pem` from its `--tls-dir`: it presents its member
certificate both when it answers and when it dials a peer.
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import grpc

ENV_CA = "LEDGER_CA"
ENV_CERT = "LEDGER_CERT"
ENV_KEY = "LEDGER_KEY"
ENV_INSECURE = "LEDGER_INSECURE"
MAX_PEM_BYTES = 1 << 20  # a certificate, key or CA file larger than this is not one

#: What to tell a person whose client has no certificate.
HOW_TO_AUTHENTICATE = (
    f"set {ENV_CA}, {ENV_CERT} and {ENV_KEY} (or pass --ca, --cert and --key) to the files "
    "of a client certificate from the cluster's CA (`ledger certs issue`), or "
    f"{ENV_INSECURE}=1 (--insecure) for a node started with --insecure")

Options = Sequence[tuple[str, object]]


class SecurityConfigError(Exception):
    """TLS settings that cannot work: a missing or unreadable file, or none at all."""


@dataclass(frozen=True, slots=True)
class TlsMaterial:
    """PEM bytes: the CA to trust, and the certificate and key to present."""

    ca: bytes
    certificate: bytes
    key: bytes = field(repr=False)  # a secret: never in a repr, a log or a message
    certificate_path: str = ""  # for messages

    def channel_credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(root_certificates=self.ca,
                                            private_key=self.key,
                                            certificate_chain=self.certificate)

    def server_credentials(self) -> grpc.ServerCredentials:
        # Every caller must present a certificate the CA signed: no anonymous TLS.
        return grpc.ssl_server_credentials([(self.key, self.certificate)],
                                           root_certificates=self.ca,
                                           require_client_auth=True)


@dataclass(frozen=True, slots=True)
class Security:
    """How to dial: with `material` (mutual TLS) or, when it is None, in plaintext."""

    material: TlsMaterial | None

    @property
    def insecure(self) -> bool:
        return self.material is None

    def channel(self, address: str, options: Options = ()) -> grpc.Channel:
        if self.material is None:
            return grpc.insecure_channel(address, options=list(options))
        return grpc.secure_channel(address, self.material.channel_credentials(),
                                   options=list(options))

    def aio_channel(self, address: str, options: Options = ()) -> grpc.aio.Channel:
        if self.material is None:
            return grpc.aio.insecure_channel(address, options=list(options))
        return grpc.aio.secure_channel(address, self.material.channel_credentials(),
                                       options=list(options))

    def describe(self) -> str:
        if self.material is None:
            return "plaintext (--insecure)"
        return f"mutual TLS as {self.material.certificate_path or 'a client certificate'}"


INSECURE = Security(None)


def read_pem(path: str | os.PathLike[str], what: str) -> bytes:
    """A PEM file's bytes; SecurityConfigError naming the file and `what` it should be."""
    try:
        with open(path, "rb") as file:
            data = file.read(MAX_PEM_BYTES + 1)
    except OSError as error:
        raise SecurityConfigError(f"cannot read the {what} {path}: {error.strerror}") from None
    if len(data) > MAX_PEM_BYTES or b"-----BEGIN " not in data:
        raise SecurityConfigError(f"{path} is not a PEM file (the {what})")
    return data


def load_material(ca: str | os.PathLike[str], certificate: str | os.PathLike[str],
                  key: str | os.PathLike[str]) -> TlsMaterial:
    return TlsMaterial(read_pem(ca, "CA certificate"), read_pem(certificate, "certificate"),
                       read_pem(key, "private key"), str(certificate))


def member_files(tls_dir: pathlib.Path, node_id: str) -> tuple[pathlib.Path, ...]:
    """The files a node reads from its --tls-dir: the CA, its certificate and its key."""
    return tls_dir / "ca.pem", tls_dir / f"{node_id}.pem", tls_dir / f"{node_id}-key.pem"


def load_member(tls_dir: pathlib.Path, node_id: str) -> TlsMaterial:
    ca, certificate, key = member_files(tls_dir, node_id)
    return load_material(ca, certificate, key)


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def client_security(ca: str | None = None, cert: str | None = None, key: str | None = None,
                    insecure: bool = False,
                    environ: Mapping[str, str] | None = None) -> Security:
    """A client's settings: flags first, then LEDGER_CA/LEDGER_CERT/LEDGER_KEY, and
    plaintext only with `insecure` or LEDGER_INSECURE=1. SecurityConfigError, saying
    which variables to set, when there is neither a certificate nor `insecure`."""
    environ = os.environ if environ is None else environ
    ca = ca or environ.get(ENV_CA) or None
    cert = cert or environ.get(ENV_CERT) or None
    key = key or environ.get(ENV_KEY) or None
    if insecure or (_truthy(environ.get(ENV_INSECURE)) and not (ca or cert or key)):
        return INSECURE
    missing = [name for name, value in ((ENV_CA, ca), (ENV_CERT, cert), (ENV_KEY, key))
               if not value]
    if missing:
        given = "no client certificate" if len(missing) == 3 else f"{', '.join(missing)} unset"
        raise SecurityConfigError(f"{given}: {HOW_TO_AUTHENTICATE}")
    assert ca and cert and key
    return Security(load_material(ca, cert, key))


def handshake_hint(details: str) -> str | None:
    """What to tell a person when a call failed in a way a TLS mismatch explains."""
    lowered = details.lower()
    if any(word in lowered for word in ("ssl", "tls", "handshake", "certificate",
                                        "socket closed", "connection reset")):
        return ("the node closed the connection, as it does when it refuses the TLS "
                "handshake (no certificate, one from another CA, an expired one, or "
                f"plaintext against TLS): {HOW_TO_AUTHENTICATE}")
    return None
