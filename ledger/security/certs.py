"""The cluster's CA and the certificates it signs (`ledger certs init`, `issue`; `renew`: renewal).

`write_init` lays out a directory like this::

    DIR/ca.pem                   the CA certificate: every node and client trusts it
    DIR/ID.pem, DIR/ID-key.pem   one member certificate and key per node
    DIR/ca-private/ca-key.pem    the CA's private key: it signs certificates, nodes never need it
    DIR/ca-private/members.txt   the member ids, one a line

The CA key lives in a subdirectory so DIR's files can be shipped to the nodes as they are
(`kubectl create secret generic --from-file=DIR` does not recurse into subdirectories).

`write_client` refuses a client name that is a member id (no client may pass for a node in
the audit trail). The member ids are the union of the member certificates in the CA dir
(every ``*.pem`` but ``ca.pem`` and ``*-key.pem`` whose role is ``member``) and
``ca-private/members.txt`` (written by `write_init` beside the CA key, so the refusal holds
after the member certificates have moved to the nodes).

EC P-256 keys (grpc's BoringSSL handles them well, and fast), SHA-256 signatures. Every
refusal is a CertificateError, with nothing written.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import os
import pathlib
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

from ledger.security import principal
from ledger.security.principal import Role
from ledger.security.tls import MAX_PEM_BYTES, member_files

CA_FILE = "ca.pem"
CA_PRIVATE_DIR = "ca-private"
CA_KEY_FILE = "ca-key.pem"
MEMBERS_FILE = "members.txt"
DEFAULT_CA_DAYS = 3650
DEFAULT_LEAF_DAYS = 365  # member and client certificates
MAX_DAYS = 2 * DEFAULT_CA_DAYS
CLOCK_SKEW_MINUTES = 5  # validity starts this far back, so a peer whose clock lags accepts it
MAX_DNS_NAME_CHARS = 253
_LABEL = r"[A-Za-z0-9_][A-Za-z0-9_-]{0,62}"
#: A host name for a DNS SAN: ASCII labels (IDNA A-labels), optionally a leading wildcard.
DNS_NAME = re.compile(rf"(\*\.)?{_LABEL}(\.{_LABEL})*\.?")
CERTIFICATE_MODE = 0o644
SECRET_MODE = 0o600  # private keys: never readable by group or others
PRIVATE_DIR_MODE = 0o700

#: What a CA key may be: ours are EC; an RSA CA someone brings signs just as well.
CaKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


class CertificateError(Exception):
    """A certificate that cannot or must not be made; nothing has been written."""


# What `write_init` needs of a cluster: ledger.node.cluster.ClusterConfig and its Members
# have it (Protocols, because this layer may not import ledger.node).
class ClusterMember(Protocol):
    @property
    def node_id(self) -> str: ...

    @property
    def host(self) -> str: ...


class Membership(Protocol):
    @property
    def members(self) -> Sequence[ClusterMember]: ...


@dataclass(frozen=True, slots=True)
class IssuedClient:
    """The files of a client certificate (absolute paths) and its serial number."""

    certificate_path: pathlib.Path
    key_path: pathlib.Path
    ca_path: pathlib.Path
    serial: int

    @property
    def paths(self) -> tuple[pathlib.Path, pathlib.Path]:
        return self.certificate_path, self.key_path

    @property
    def serial_entry(self) -> str:
        """The serial as the revocation list takes it: ``serial:HEX``."""
        return f"serial:{self.serial:X}"


@dataclass(frozen=True, slots=True)
class _File:
    relative_path: str  # under the output directory
    data: bytes
    mode: int


# --- the crypto -------------------------------------------------------------------------


def check_days(days: int, what: str = "lifetime") -> None:
    if not 1 <= days <= MAX_DAYS:
        raise CertificateError(f"a certificate {what} of {days} days is out of range: "
                               f"1 to {MAX_DAYS} days")


def _validity(days: int) -> tuple[datetime.datetime, datetime.datetime]:
    now = datetime.datetime.now(datetime.UTC)
    return now - datetime.timedelta(minutes=CLOCK_SKEW_MINUTES), now + datetime.timedelta(days=days)


def _key_usage(*, digital_signature: bool = False, cert_sign: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature=digital_signature, content_commitment=False,
                         key_encipherment=False, data_encipherment=False, key_agreement=False,
                         key_cert_sign=cert_sign, crl_sign=cert_sign, encipher_only=False,
                         decipher_only=False)


def make_ca(days: int = DEFAULT_CA_DAYS) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A new self-signed CA that may sign leaf certificates only (path length 0)."""
    check_days(days, "CA lifetime")
    key = ec.generate_private_key(ec.SECP256R1())
    # A random tag tells two clusters' CAs apart in error messages and `openssl x509` output.
    name = x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "paxos-ledger"),
        x509.NameAttribute(NameOID.COMMON_NAME, f"ledger cluster CA {secrets.token_hex(4)}"),
    ])
    not_before, not_after = _validity(days)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before).not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
        .sign(key, hashes.SHA256()))
    return certificate, key


def _issue(ca_certificate: x509.Certificate, ca_key: CaKey, common_name: str,
           alt_names: Sequence[x509.GeneralName], usages: Sequence[ObjectIdentifier],
           days: int) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    check_days(days)
    not_before, not_after = _validity(days)
    ca_not_after = ca_certificate.not_valid_after_utc
    if not_after - ca_not_after >= datetime.timedelta(days=1):
        # It would stop working at the CA's expiry anyway: silently earlier than asked.
        most_days = (ca_not_after - not_before).days
        raise CertificateError(
            f"a {days}-day certificate would outlive its CA, which expires {ca_not_after:%Y-%m-%d}"
            + (f": ask for at most {most_days} days" if most_days >= 1 else ": make a new CA"))
    # Less than a day over (--days equal to the CA's days, made a moment later): end with it.
    not_after = min(not_after, ca_not_after)
    key = ec.generate_private_key(ec.SECP256R1())
    try:
        ski = ca_certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        authority = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)
    except x509.ExtensionNotFound:
        authority = x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key())
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca_certificate.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before).not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(digital_signature=True), critical=True)
        .add_extension(x509.ExtendedKeyUsage(list(usages)), critical=False)
        .add_extension(x509.SubjectAlternativeName(list(alt_names)), critical=False)
        .add_extension(authority, critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
        .sign(ca_key, hashes.SHA256()))
    return certificate, key


def _principal_names(name: str, roles: Iterable[Role]) -> list[x509.GeneralName]:
    uris = [principal.NAME_URI_PREFIX + name,
            *(principal.ROLE_URI_PREFIX + role.value for role in roles)]
    return [x509.UniformResourceIdentifier(uri) for uri in uris]


def _unique_hosts(texts: Iterable[str]) -> tuple[str, ...]:
    stripped = (text.strip() for text in texts)
    # An IPv6 host wears brackets in HOST:PORT ([::1]:7001); a SAN holds the bare address.
    bare = (text[1:-1] if text[:1] + text[-1:] == "[]" else text for text in stripped)
    return tuple(dict.fromkeys(host for host in bare if host))  # no repeats or blanks


def member_hosts(host: str, sans: Iterable[str] = ()) -> tuple[str, ...]:
    """The hosts a member certificate is valid for: its own, then the extras."""
    return _unique_hosts((host, *sans))


def host_name(host: str) -> x509.GeneralName:
    """An IP address SAN if `host` parses as one, else a DNS SAN."""
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        pass
    if len(host) > MAX_DNS_NAME_CHARS or not DNS_NAME.fullmatch(host):
        raise CertificateError(f"{host[:80]!r} is neither an IP address nor a host name")
    return x509.DNSName(host)


def issue_member(ca_certificate: x509.Certificate, ca_key: CaKey, node_id: str,
                 hosts: Iterable[str], days: int = DEFAULT_LEAF_DAYS,
                 ) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A member certificate, valid for `hosts`: a node both answers (clients and peers)
    and dials peers with it."""
    _check_member_id(node_id)
    bare_hosts = _unique_hosts(hosts)
    if not bare_hosts:
        raise CertificateError(f"member {node_id}: a member certificate needs a host")
    alt_names = [*map(host_name, bare_hosts), *_principal_names(node_id, [Role.MEMBER])]
    return _issue(ca_certificate, ca_key, node_id, alt_names,
                  [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH], days)


def issue_client(ca_certificate: x509.Certificate, ca_key: CaKey, name: str,
                 roles: Iterable[Role], days: int = DEFAULT_LEAF_DAYS,
                 ) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A client certificate: a principal with `roles`, for dialling only (no host names)."""
    _check_client_name(name, frozenset())
    chosen = _check_client_roles(roles)
    return _issue(ca_certificate, ca_key, name, _principal_names(name, chosen),
                  [ExtendedKeyUsageOID.CLIENT_AUTH], days)


def pem_of(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def key_pem(key: CaKey) -> bytes:
    # Unencrypted: a node or client reads it unattended; the file mode protects it.
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


# --- names and roles --------------------------------------------------------------------


def _check_member_id(node_id: str) -> None:
    try:
        principal.check_name(node_id)
    except ValueError as error:
        raise CertificateError(f"member id: {error}") from None
    if node_id.lower() in principal.RESERVED_NAMES:
        # "ca" would also write ca.pem over the CA certificate.
        raise CertificateError(f"{node_id!r} is reserved and cannot be a member id")
    if node_id.endswith("-key"):
        # ID.pem would pass for another member's (or the CA's) ID-key.pem.
        raise CertificateError(f"member id {node_id!r} ends in -key, like a key file's name")


def _check_client_name(name: str, member_ids: frozenset[str]) -> None:
    try:
        principal.check_name(name)
    except ValueError as error:
        raise CertificateError(str(error)) from None
    # Case-insensitive: "CA" or "N1" in an audit trail reads as the CA or node n1.
    if name.lower() in principal.RESERVED_NAMES:
        reserved = ", ".join(sorted(principal.RESERVED_NAMES))
        raise CertificateError(f"{name!r} is reserved: no client may be named {reserved}")
    if name.lower() in {member_id.lower() for member_id in member_ids}:
        raise CertificateError(f"{name!r} is a member id of this cluster: a client may not "
                               "take a node's name")


def _check_client_roles(roles: Iterable[Role]) -> tuple[Role, ...]:
    chosen = tuple(dict.fromkeys(roles))  # without repeats, in the order given
    if Role.MEMBER in chosen:
        raise CertificateError("a client certificate cannot carry the role member: member "
                               "certificates are made only by `ledger certs init` (or renew)")
    if not chosen:
        names = ", ".join(role.value for role in principal.CLIENT_ROLES)
        raise CertificateError(f"a client certificate needs at least one role: {names}")
    return chosen


# --- files ------------------------------------------------------------------------------


def ca_key_paths(ca_dir: pathlib.Path) -> tuple[pathlib.Path, pathlib.Path]:
    """Where the CA key may be, in order: ca-private/, then beside ca.pem (by hand)."""
    return ca_dir / CA_PRIVATE_DIR / CA_KEY_FILE, ca_dir / CA_KEY_FILE


def _read_pem(path: pathlib.Path) -> bytes:
    with open(path, "rb") as file:
        data = file.read(MAX_PEM_BYTES + 1)
    if len(data) > MAX_PEM_BYTES:
        raise ValueError(f"{path} is larger than {MAX_PEM_BYTES} bytes")
    return data


def load_ca(ca_dir: pathlib.Path) -> tuple[x509.Certificate, CaKey]:
    """The CA certificate and key in `ca_dir`; CertificateError saying what is missing."""
    ca_path = ca_dir / CA_FILE
    try:
        certificate = x509.load_pem_x509_certificate(_read_pem(ca_path))
    except FileNotFoundError:
        raise CertificateError(f"no CA certificate at {ca_path} (make a CA with "
                               "`ledger certs init`)") from None
    except (OSError, ValueError) as error:
        raise CertificateError(f"cannot read the CA certificate {ca_path}: {error}") from None
    key_path = next((path for path in ca_key_paths(ca_dir) if path.exists()), None)
    if key_path is None:
        private, beside = ca_key_paths(ca_dir)
        raise CertificateError(f"no CA private key at {private} nor at {beside}")
    try:
        key = serialization.load_pem_private_key(_read_pem(key_path), password=None)
    except TypeError:
        raise CertificateError(f"the CA key {key_path} is encrypted; give an "
                               "unencrypted one") from None
    except (OSError, ValueError) as error:
        raise CertificateError(f"cannot read the CA key {key_path}: {error}") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise CertificateError(f"the CA key {key_path} is neither EC nor RSA")
    der, spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(der, spki) != certificate.public_key().public_bytes(der, spki):
        raise CertificateError(f"the CA key {key_path} does not belong to {ca_path}")
    return certificate, key


def member_ids(ca_dir: pathlib.Path) -> frozenset[str]:
    """The member ids known in `ca_dir` (see the module docstring for the two sources)."""
    ids: set[str] = set()
    for path in sorted(ca_dir.glob("*.pem")):
        if path.name == CA_FILE or path.name.endswith("-key.pem"):
            continue
        try:
            certificate = x509.load_pem_x509_certificate(_read_pem(path))
            holder = principal.principal_of_certificate(certificate)
        except (OSError, ValueError):  # NotAPrincipal is a ValueError
            continue  # not a certificate of ours: it names nobody
        if holder.is_member():
            ids.add(holder.name)
    try:
        listed = (ca_dir / CA_PRIVATE_DIR / MEMBERS_FILE).read_text()
    except FileNotFoundError:
        listed = ""
    except OSError as error:
        raise CertificateError(f"cannot read the member ids in {ca_dir / CA_PRIVATE_DIR}: "
                               f"{error.strerror}") from None
    ids.update(line.strip() for line in listed.splitlines()
               if line.strip() and not line.startswith("#"))
    return frozenset(ids)


def _refuse_existing(out_dir: pathlib.Path, relative_paths: Iterable[str]) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise CertificateError(f"{out_dir} is not a directory")
    paths = [out_dir / path for path in relative_paths]
    for parent in {path.parent for path in paths} - {out_dir}:
        if os.path.lexists(parent) and not parent.is_dir():
            raise CertificateError(f"{parent} is not a directory")
    existing = [str(path) for path in paths if os.path.lexists(path)]
    if existing:
        raise CertificateError(f"refusing to overwrite what is there: {', '.join(existing)} "
                               "(remove them or choose another directory)")


def _make_dirs(path: pathlib.Path, mode: int, made: list[pathlib.Path]) -> None:
    """Create `path` and its missing parents, recording each one made (to undo)."""
    missing: list[pathlib.Path] = []
    while not path.exists():
        missing.append(path)
        path = path.parent
    for directory in reversed(missing):
        directory.mkdir(mode)
        made.append(directory)


def _write_all(out_dir: pathlib.Path, files: Sequence[_File]) -> list[pathlib.Path]:
    """Write `files` under `out_dir`, all or none.

    Every byte is made in memory before this runs, so only the file system can fail
    here; then what was written is removed again. O_EXCL: a file that appeared since
    the check is never overwritten. Keys are created with their final mode, never
    readable by others even for an instant.
    """
    _refuse_existing(out_dir, [file.relative_path for file in files])
    made_dirs: list[pathlib.Path] = []
    written: list[pathlib.Path] = []
    current = out_dir
    try:
        _make_dirs(out_dir, 0o755, made_dirs)
        for file in files:
            current = out_dir / file.relative_path
            if current.parent != out_dir:
                _make_dirs(current.parent, PRIVATE_DIR_MODE, made_dirs)
                os.chmod(current.parent, PRIVATE_DIR_MODE)  # an existing one is tightened
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
            descriptor = os.open(current, flags, file.mode)
            written.append(current)
            with os.fdopen(descriptor, "wb") as stream:
                stream.write(file.data)
                stream.flush()
                os.fsync(stream.fileno())
        for directory in {path.parent for path in written}:  # the new names, durable too
            descriptor = os.open(directory, os.O_RDONLY)
            try:
                os.fsync(descriptor)
            finally:
                os.close(descriptor)
    except BaseException as error:
        for path in reversed(written):
            path.unlink(missing_ok=True)
        for directory in reversed(made_dirs):
            with contextlib.suppress(OSError):  # not empty: someone else's files are in it
                directory.rmdir()
        if isinstance(error, FileExistsError):
            raise CertificateError(f"{current} appeared while writing: nothing kept") from None
        if isinstance(error, OSError):
            raise CertificateError(f"cannot write {current}: {error.strerror or error}; "
                                   "nothing kept") from None
        raise
    return written


def write_init(out_dir: pathlib.Path, cluster: Membership, sans: Iterable[str] = (),
               days: int = DEFAULT_LEAF_DAYS,
               ca_days: int = DEFAULT_CA_DAYS) -> list[pathlib.Path]:
    """Make a CA and a certificate for every member of `cluster`, valid for the member's
    host and every one of `sans`; write them under `out_dir` (layout in the module
    docstring). Returns the paths written. CertificateError, with nothing written, if
    `out_dir` already holds any of these files."""
    check_days(days)
    check_days(ca_days, "CA lifetime")
    members = list(cluster.members)
    if not members:
        raise CertificateError("the cluster has no members")
    for member in members:
        _check_member_id(member.node_id)
        for host in member_hosts(member.host, sans):
            host_name(host)  # every host is checked before any key is made
    member_paths = {member.node_id: member_files(out_dir, member.node_id)[1:]
                    for member in members}
    ca_key_path, members_path = (f"{CA_PRIVATE_DIR}/{name}" for name in (CA_KEY_FILE, MEMBERS_FILE))
    # A CA key beside ca.pem (a CA laid out by hand) is a CA too: never pair it with a new one.
    held = [path for path in (CA_FILE, CA_KEY_FILE, ca_key_path)
            if os.path.lexists(out_dir / path)]
    if held:
        raise CertificateError(f"{out_dir} already holds a CA ({', '.join(held)}): refusing to "
                               "replace it, which would orphan every certificate it signed")
    _refuse_existing(out_dir, [members_path,
                               *(path.name for paths in member_paths.values() for path in paths)])

    ca_certificate, ca_key = make_ca(ca_days)
    files = [_File(CA_FILE, pem_of(ca_certificate), CERTIFICATE_MODE)]
    for member in members:
        certificate, key = issue_member(ca_certificate, ca_key, member.node_id,
                                        member_hosts(member.host, sans), days)
        certificate_path, key_path = member_paths[member.node_id]
        files += [_File(certificate_path.name, pem_of(certificate), CERTIFICATE_MODE),
                  _File(key_path.name, key_pem(key), SECRET_MODE)]
    listing = "".join(f"{member.node_id}\n" for member in members)
    files += [
        _File(ca_key_path, key_pem(ca_key), SECRET_MODE),
        _File(members_path, ("# the member ids: `ledger certs issue` gives no client these "
                             "names\n" + listing).encode(), CERTIFICATE_MODE),
    ]
    return _write_all(out_dir, files)


def write_client(ca_dir: pathlib.Path, name: str, roles: Iterable[Role],
                 out_dir: pathlib.Path, days: int = DEFAULT_LEAF_DAYS) -> IssuedClient:
    """Issue a client certificate for `name` with `roles`, signed by the CA in `ca_dir`,
    as NAME.pem and NAME-key.pem in `out_dir`. CertificateError, with nothing written,
    for a name that is reserved or a member id, the role member, an existing file or a
    CA that cannot be read."""
    check_days(days)
    _check_client_name(name, frozenset())
    chosen = _check_client_roles(roles)
    certificate_path, key_path = out_dir / f"{name}.pem", out_dir / f"{name}-key.pem"
    _refuse_existing(out_dir, [certificate_path.name, key_path.name])
    ca_certificate, ca_key = load_ca(ca_dir)
    _check_client_name(name, member_ids(ca_dir))
    certificate, key = issue_client(ca_certificate, ca_key, name, chosen, days)
    _write_all(out_dir, [_File(certificate_path.name, pem_of(certificate), CERTIFICATE_MODE),
                         _File(key_path.name, key_pem(key), SECRET_MODE)])
    return IssuedClient(certificate_path.absolute(), key_path.absolute(),
                        (ca_dir / CA_FILE).absolute(), certificate.serial_number)
