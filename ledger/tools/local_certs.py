"""Certificates for a cluster on this machine (`ledger cluster up`, the demo, the tests):
made on first start in the data directory, reused later, with one local client
certificate carrying every client role."""

from __future__ import annotations

import pathlib
from collections.abc import Iterable
from dataclasses import dataclass

from ledger.node.cluster import ClusterConfig
from ledger.security import certs
from ledger.security.principal import CLIENT_ROLES
from ledger.security.tls import (
    ENV_CA,
    ENV_CERT,
    ENV_KEY,
    Security,
    load_material,
    member_files,
)

LOCAL_CLIENT = "local"  # the client certificate every local tool uses: every client role


@dataclass(frozen=True, slots=True)
class LocalCerts:
    tls_dir: pathlib.Path
    ca_path: pathlib.Path
    certificate_path: pathlib.Path
    key_path: pathlib.Path

    @property
    def security(self) -> Security:
        return Security(load_material(self.ca_path, self.certificate_path, self.key_path))

    @property
    def environment(self) -> dict[str, str]:
        """The client settings, as the LEDGER_* variables every client reads."""
        return {ENV_CA: str(self.ca_path), ENV_CERT: str(self.certificate_path),
                ENV_KEY: str(self.key_path)}

    def export_lines(self) -> list[str]:
        return [f"export {name}={value}" for name, value in self.environment.items()]


def ensure_local_certs(tls_dir: pathlib.Path, cluster: ClusterConfig,
                       sans: Iterable[str] = ()) -> LocalCerts:
    """The cluster's certificates in `tls_dir`, made if there are none yet (a CA, every
    member's, and the local client's); CertificateError if the directory holds a CA
    without a certificate for one of the members."""
    tls_dir = tls_dir.absolute()
    if not (tls_dir / certs.CA_FILE).exists():
        certs.write_init(tls_dir, cluster, sans)
    missing = [m.node_id for m in cluster.members
               if not all(path.exists() for path in member_files(tls_dir, m.node_id))]
    if missing:
        raise certs.CertificateError(
            f"{tls_dir} holds a CA but no certificate for {', '.join(missing)}: the cluster's "
            f"members changed since it was made; move it aside to make a new one")
    clients = tls_dir / "clients"
    certificate, key = clients / f"{LOCAL_CLIENT}.pem", clients / f"{LOCAL_CLIENT}-key.pem"
    if not certificate.exists():
        clients.mkdir(mode=0o700, exist_ok=True)
        certs.write_client(tls_dir, LOCAL_CLIENT, CLIENT_ROLES, clients)
    return LocalCerts(tls_dir, tls_dir / certs.CA_FILE, certificate, key)
