"""Re-issue member certificates from the cluster's existing CA (`ledger certs renew`).

Member certificates expire (365 days by default) and name their node's host, so a cluster
needs new ones before a year is out, and a node that moved needs one for its new address.
`renew_members` signs them with the CA that `ledger certs init` made in a directory, each
with a new key, valid for the member's host in the cluster spec plus every extra SAN (the
extras of the previous certificates are not carried over: give them again). The CA stays
the same, so clients' certificates and every node's ca.pem stay valid.

A renewal re-issues and never adds: every member of the spec must be listed in
``ca-private/members.txt`` (a new member is a new cluster configuration). Every refusal is
a CertificateError raised before any file is touched.

How ``DIR/ID.pem`` and ``DIR/ID-key.pem`` are replaced:

1. every byte is made in memory; then for every member, beside the old files and under
   temporary names, the new key and certificate and a copy of the old pair are written
   (keys 0600 from creation, fsync'd), all or none;
2. per member, renames (os.replace, atomic per file): the copies over
   ``ID-key.pem.previous`` and ``ID.pem.previous``, then the new key over ``ID-key.pem``,
   then the new certificate over ``ID.pem``; then the directory is fsync'd.

A crash in step 1 leaves every live file as it was (and at worst some hidden temporary
files, ``.ID*.pem.*.tmp``, to delete). A crash in step 2 can fall between a member's two
live renames: its new key then sits beside its old certificate, a pair that does not
match (a node would refuse to start with it), but ``ID.pem.previous`` and
``ID-key.pem.previous`` hold the old pair by then; renew again, or move them back. The
previous pair is kept only when the live pair matches, so a renewal run after such a crash
does not overwrite the last good pair.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import pathlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ledger.security.certs import (
    CA_PRIVATE_DIR,
    CERTIFICATE_MODE,
    DEFAULT_LEAF_DAYS,
    MEMBERS_FILE,
    SECRET_MODE,
    CertificateError,
    ClusterMember,
    Membership,
    _File,
    _write_all,
    check_days,
    host_name,
    issue_member,
    key_pem,
    load_ca,
    member_hosts,
    pem_of,
)
from ledger.security.tls import MAX_PEM_BYTES, member_files

PREVIOUS_SUFFIX = ".previous"


@dataclass(frozen=True, slots=True)
class RenewedMember:
    """One re-issued member certificate: where it is, what it is valid for and until when."""

    node_id: str
    certificate_path: pathlib.Path
    key_path: pathlib.Path
    hosts: tuple[str, ...]
    serial: int
    not_after: datetime.datetime
    kept_previous: bool  # the replaced pair is in ID.pem.previous and ID-key.pem.previous


def previous_path(path: pathlib.Path) -> pathlib.Path:
    """Where a renewal keeps the file it replaced: ``ID.pem`` -> ``ID.pem.previous``."""
    return path.with_name(path.name + PREVIOUS_SUFFIX)


def listed_members(ca_dir: pathlib.Path) -> frozenset[str]:
    """The member ids `ledger certs init` listed in ``ca-private/members.txt``."""
    path = ca_dir / CA_PRIVATE_DIR / MEMBERS_FILE
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise CertificateError(f"no member list at {path}: a renewal re-issues only the "
                               "members `ledger certs init` made") from None
    except (OSError, UnicodeDecodeError) as error:
        raise CertificateError(f"cannot read the member list {path}: {error}") from None
    return frozenset(line.strip() for line in text.splitlines()
                     if line.strip() and not line.startswith("#"))


def _chosen(cluster: Membership, only: Iterable[str], listed: frozenset[str],
            ca_dir: pathlib.Path) -> list[ClusterMember]:
    members = list(cluster.members)
    if not members:
        raise CertificateError("the cluster has no members")
    ids = [member.node_id for member in members]
    wanted = tuple(dict.fromkeys(only))
    unknown = [node_id for node_id in wanted if node_id not in ids]
    if unknown:
        raise CertificateError(f"not a member of the cluster: {', '.join(unknown)} (its "
                               f"members: {', '.join(ids)})")
    unlisted = [node_id for node_id in ids if node_id not in listed]
    if unlisted:
        raise CertificateError(
            f"{', '.join(unlisted)} {'is' if len(unlisted) == 1 else 'are'} not among the "
            f"members of the CA in {ca_dir} ({ca_dir / CA_PRIVATE_DIR / MEMBERS_FILE}): a "
            "renewal re-issues certificates and adds no member; a new member means a new "
            "cluster configuration")
    return [member for member in members if not wanted or member.node_id in wanted]


def _read_old(path: pathlib.Path) -> bytes | None:
    """A file about to be replaced, or None if there is none; refuses a directory."""
    if os.path.lexists(path) and path.is_dir():
        raise CertificateError(f"{path} is a directory, not a file: refusing to replace it")
    try:
        with open(path, "rb") as file:
            data = file.read(MAX_PEM_BYTES + 1)
    except FileNotFoundError:
        return None
    except OSError as error:
        raise CertificateError(f"cannot read {path}: {error.strerror or error}") from None
    if len(data) > MAX_PEM_BYTES:
        raise CertificateError(f"{path} is larger than {MAX_PEM_BYTES} bytes: not ours to "
                               "replace")
    return data


def _pair_matches(certificate: bytes, key: bytes) -> bool:
    """Whether a certificate and a key belong together (False for anything unreadable)."""
    der, spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    try:
        public = x509.load_pem_x509_certificate(certificate).public_key()
        private = serialization.load_pem_private_key(key, password=None)
    except (ValueError, TypeError):
        return False
    return private.public_key().public_bytes(der, spki) == public.public_bytes(der, spki)


def _fsync_dir(directory: pathlib.Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def renew_members(ca_dir: pathlib.Path, cluster: Membership, sans: Iterable[str] = (),
                  days: int = DEFAULT_LEAF_DAYS,
                  only: Iterable[str] = ()) -> list[RenewedMember]:
    """Re-issue the member certificates of `cluster` (or of the ids in `only`) from the CA
    in `ca_dir`, with new keys, each valid for the member's host and every one of `sans`,
    replacing ``ca_dir/ID.pem`` and ``ca_dir/ID-key.pem`` as the module docstring says.

    CertificateError, with nothing changed, for a missing CA or CA key, an id of `only`
    not in `cluster`, a member of `cluster` the CA did not list, a bad host, a lifetime
    out of range or past the CA's expiry, or a file that cannot be read or written."""
    check_days(days)
    only = tuple(only)
    ca_certificate, ca_key = load_ca(ca_dir)
    members = _chosen(cluster, only, listed_members(ca_dir), ca_dir)
    hosts = {member.node_id: member_hosts(member.host, sans) for member in members}
    for host in (host for member in hosts.values() for host in member):
        host_name(host)  # every host is checked before any key is made

    token = secrets.token_hex(4)
    files: list[_File] = []
    renames: list[tuple[pathlib.Path, pathlib.Path]] = []  # (temporary, final), in order
    renewed: list[RenewedMember] = []

    def stage(final: pathlib.Path, kind: str, data: bytes, mode: int) -> None:
        temporary = f".{final.name}.{token}.{kind}.tmp"
        files.append(_File(temporary, data, mode))
        renames.append((ca_dir / temporary, final))

    for member in members:
        _, certificate_path, key_path = member_files(ca_dir, member.node_id)
        old_certificate, old_key = _read_old(certificate_path), _read_old(key_path)
        for path in (certificate_path, key_path):
            _read_old(previous_path(path))  # only to refuse a directory there
        certificate, key = issue_member(ca_certificate, ca_key, member.node_id,
                                        hosts[member.node_id], days)
        keep = False
        if old_certificate is not None and old_key is not None:
            keep = _pair_matches(old_certificate, old_key)  # else keep the last good pair
        if keep:
            stage(previous_path(key_path), "previous", old_key, SECRET_MODE)
            stage(previous_path(certificate_path), "previous", old_certificate,
                  CERTIFICATE_MODE)
        stage(key_path, "new", key_pem(key), SECRET_MODE)
        stage(certificate_path, "new", pem_of(certificate), CERTIFICATE_MODE)
        renewed.append(RenewedMember(member.node_id, certificate_path.absolute(),
                                     key_path.absolute(), hosts[member.node_id],
                                     certificate.serial_number,
                                     certificate.not_valid_after_utc, keep))

    _write_all(ca_dir, files)  # step 1: all or none, else CertificateError
    try:
        for temporary, final in renames:  # step 2
            try:
                os.replace(temporary, final)
            except OSError as error:
                raise CertificateError(
                    f"cannot replace {final}: {error.strerror or error}; the files before "
                    "it were replaced, the others are unchanged: renew again (a replaced "
                    f"pair is kept as ID.pem{PREVIOUS_SUFFIX} and ID-key.pem"
                    f"{PREVIOUS_SUFFIX})") from None
    finally:
        for temporary, _ in renames:  # only those not renamed are still there
            with contextlib.suppress(OSError):
                temporary.unlink(missing_ok=True)
    try:
        _fsync_dir(ca_dir)  # the renames, durable
    except OSError as error:
        raise CertificateError(f"renewed, but cannot flush {ca_dir} to disk: "
                               f"{error.strerror or error}") from None
    return renewed
