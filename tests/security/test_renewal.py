"""`ledger certs renew`: new keys and serials from the same CA, for the hosts of the spec and
the extras; only the chosen members; the previous pair kept; every refusal changes nothing;
an interrupted renewal leaves a usable pair; clients' certificates stay valid."""

from __future__ import annotations

import datetime
import os
import pathlib
import ssl
import stat
from collections.abc import Callable
from ipaddress import ip_address

import pytest
from click.testing import CliRunner, Result
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ledger.cli.main import main
from ledger.node.cluster import ClusterConfig
from ledger.security import certs, renewal
from ledger.security.principal import Role, principal_of_pem

CLUSTER = "n1=127.0.0.1:7001,n2=db2.example:7002,n3=db3.example:7003"
MOVED = "n1=127.0.0.1:7001,n2=10.1.2.3:7002,n3=db3.example:7003"  # n2 moved
MEMBERS = ("n1", "n2", "n3")
NEXT_STEP = ("restart each node, one at a time, to use its new certificate (clients' "
             "certificates are unaffected: the CA is the same)")


def ledger(*args: str | os.PathLike[str]) -> Result:
    return CliRunner().invoke(main, [str(arg) for arg in args], catch_exceptions=False)


def renew(ca_dir: pathlib.Path, *extra: str, cluster: str = CLUSTER) -> Result:
    return ledger("certs", "renew", "--ca-dir", ca_dir, "--cluster", cluster, *extra)


def certificate(path: pathlib.Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def snapshot(directory: pathlib.Path) -> dict[str, tuple[bytes, int]]:
    """Every file under `directory` by relative path, with its mode."""
    return {str(path.relative_to(directory)): (path.read_bytes(), stat.S_IMODE(
        path.stat().st_mode)) for path in sorted(directory.rglob("*")) if path.is_file()}


def signed_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    public = ca.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    assert cert.signature_hash_algorithm is not None
    public.verify(cert.signature, cert.tbs_certificate_bytes,
                  ec.ECDSA(cert.signature_hash_algorithm))  # raises InvalidSignature if not
    return cert.issuer == ca.subject


def hosts_of(cert: x509.Certificate) -> set[str]:
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return ({str(address) for address in names.get_values_for_type(x509.IPAddress)}
            | set(names.get_values_for_type(x509.DNSName)))


def public_der(key_or_cert: x509.Certificate | ec.EllipticCurvePrivateKey) -> bytes:
    public = key_or_cert.public_key()
    return public.public_bytes(serialization.Encoding.DER,
                               serialization.PublicFormat.SubjectPublicKeyInfo)


def a_pair(directory: pathlib.Path, node_id: str, suffix: str = "") -> tuple[bytes, bytes]:
    return ((directory / f"{node_id}.pem{suffix}").read_bytes(),
            (directory / f"{node_id}-key.pem{suffix}").read_bytes())


def assert_pair_loads(directory: pathlib.Path, node_id: str, suffix: str = "") -> None:
    """The certificate and key go together: what TLS checks when a node starts."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(directory / f"{node_id}.pem{suffix}",
                            directory / f"{node_id}-key.pem{suffix}")


@pytest.fixture
def ca_dir(tmp_path: pathlib.Path) -> pathlib.Path:
    out = tmp_path / "tls"
    result = ledger("certs", "init", "--cluster", CLUSTER, "--out", out, "--san", "localhost")
    assert result.exit_code == 0, result.output
    return out


# --- renewing -----------------------------------------------------------------------


def test_renew_reissues_every_member_with_a_new_key_from_the_same_ca(
        ca_dir: pathlib.Path, tmp_path: pathlib.Path) -> None:
    clients = tmp_path / "clients"
    issued = ledger("certs", "issue", "--ca-dir", ca_dir, "--role", "teller", "--out", clients,
                    "--", "alice")
    assert issued.exit_code == 0, issued.output
    before = {node_id: certificate(ca_dir / f"{node_id}.pem") for node_id in MEMBERS}
    old_pairs = {node_id: a_pair(ca_dir, node_id) for node_id in MEMBERS}
    private = snapshot(ca_dir / "ca-private")
    ca_pem = (ca_dir / "ca.pem").read_bytes()

    result = renew(ca_dir, "--san", "localhost", "--san", "ledger.internal", "--days", "90",
                   cluster=MOVED)
    assert result.exit_code == 0, result.output

    ca = certificate(ca_dir / "ca.pem")
    assert (ca_dir / "ca.pem").read_bytes() == ca_pem and snapshot(ca_dir / "ca-private") == private
    expected_hosts = {"n1": {"127.0.0.1"}, "n2": {"10.1.2.3"}, "n3": {"db3.example"}}
    for node_id in MEMBERS:
        new = certificate(ca_dir / f"{node_id}.pem")
        key = serialization.load_pem_private_key((ca_dir / f"{node_id}-key.pem").read_bytes(),
                                                 password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        assert signed_by(new, ca)
        assert new.serial_number != before[node_id].serial_number
        assert public_der(new) != public_der(before[node_id])  # a new key
        assert public_der(new) == public_der(key)
        assert hosts_of(new) == expected_hosts[node_id] | {"localhost", "ledger.internal"}
        holder = principal_of_pem((ca_dir / f"{node_id}.pem").read_bytes())
        assert (holder.name, holder.roles) == (node_id, frozenset({Role.MEMBER}))
        assert new.not_valid_after_utc - new.not_valid_before_utc == datetime.timedelta(
            days=90, minutes=certs.CLOCK_SKEW_MINUTES)
        assert stat.S_IMODE((ca_dir / f"{node_id}-key.pem").stat().st_mode) == 0o600
        assert a_pair(ca_dir, node_id, ".previous") == old_pairs[node_id]
        assert_pair_loads(ca_dir, node_id)
        assert f"{node_id} (valid for " in result.output
        assert f"{new.not_valid_after_utc:%Y-%m-%d %H:%M} UTC" in result.output
    assert "10.1.2.3" in result.output and "db2.example" not in hosts_of(
        certificate(ca_dir / "n2.pem"))
    assert ip_address("10.1.2.3") in certificate(ca_dir / "n2.pem").extensions \
        .get_extension_for_class(x509.SubjectAlternativeName).value \
        .get_values_for_type(x509.IPAddress)
    assert NEXT_STEP in " ".join(result.output.split())
    # The client made before the renewal: still signed by the CA every node trusts.
    assert signed_by(certificate(clients / "alice.pem"), ca)
    # Nothing but the new files and the kept pairs: no temporary file is left over.
    assert sorted(path.name for path in ca_dir.iterdir()) == sorted(
        ["ca.pem", "ca-private",
         *(f"{node_id}{suffix}" for node_id in MEMBERS
           for suffix in (".pem", "-key.pem", ".pem.previous", "-key.pem.previous"))])


def test_member_renews_only_the_members_named(ca_dir: pathlib.Path) -> None:
    before = snapshot(ca_dir)
    old_serial = certificate(ca_dir / "n2.pem").serial_number
    result = renew(ca_dir, "--member", "n2", "--member", "n2")
    assert result.exit_code == 0, result.output
    after = snapshot(ca_dir)
    assert set(after) == set(before) | {"n2.pem.previous", "n2-key.pem.previous"}
    for name in ("ca.pem", "ca-private/ca-key.pem", "ca-private/members.txt",
                 "n1.pem", "n1-key.pem", "n3.pem", "n3-key.pem"):
        assert after[name] == before[name], name  # byte-identical
    assert after["n2.pem"] != before["n2.pem"] and after["n2-key.pem"] != before["n2-key.pem"]
    assert certificate(ca_dir / "n2.pem").serial_number != old_serial
    assert "renewed 1 member certificate " in result.output and "n1 (" not in result.output


def test_the_previous_pair_moves_on_with_each_renewal(ca_dir: pathlib.Path) -> None:
    first = a_pair(ca_dir, "n1")
    assert renew(ca_dir, "--member", "n1").exit_code == 0
    second = a_pair(ca_dir, "n1")
    assert a_pair(ca_dir, "n1", ".previous") == first
    assert renew(ca_dir, "--member", "n1").exit_code == 0
    assert a_pair(ca_dir, "n1", ".previous") == second != a_pair(ca_dir, "n1")
    assert stat.S_IMODE((ca_dir / "n1-key.pem.previous").stat().st_mode) == 0o600
    assert_pair_loads(ca_dir, "n1", ".previous")


def test_renew_writes_a_pair_that_moved_to_its_node(ca_dir: pathlib.Path) -> None:
    """The member files may have been shipped off: the renewed pair is written anew."""
    for name in ("n3.pem", "n3-key.pem"):
        (ca_dir / name).unlink()
    result = renew(ca_dir, "--member", "n3")
    assert result.exit_code == 0, result.output
    assert_pair_loads(ca_dir, "n3")
    assert not (ca_dir / "n3.pem.previous").exists()


def test_as_a_function(ca_dir: pathlib.Path) -> None:
    renewed = renewal.renew_members(ca_dir, ClusterConfig.parse(CLUSTER), ["localhost"], 30,
                                    only=["n3", "n1"])
    assert [member.node_id for member in renewed] == ["n1", "n3"]  # in the cluster's order
    assert renewed[0].certificate_path == (ca_dir / "n1.pem").absolute()
    assert renewed[0].hosts == ("127.0.0.1", "localhost") and renewed[0].kept_previous
    assert renewed[1].serial == certificate(ca_dir / "n3.pem").serial_number
    assert renewed[1].not_after == certificate(ca_dir / "n3.pem").not_valid_after_utc


# --- refusals: nothing changed -------------------------------------------------------


def _drop_ca_key(ca_dir: pathlib.Path) -> None:
    (ca_dir / "ca-private" / "ca-key.pem").unlink()


def _drop_member_list(ca_dir: pathlib.Path) -> None:
    (ca_dir / "ca-private" / "members.txt").unlink()


def _no_ca(ca_dir: pathlib.Path) -> None:
    (ca_dir / "ca.pem").unlink()


@pytest.mark.parametrize(("prepare", "flags", "cluster", "says"), [
    (_no_ca, [], CLUSTER, "no CA certificate"),
    (_drop_ca_key, [], CLUSTER, "no CA private key"),
    (_drop_member_list, [], CLUSTER, "no member list"),
    (None, ["--member", "n9"], CLUSTER, "not a member of the cluster: n9"),
    (None, ["--member", "n1"], CLUSTER + ",n4=db4.example:7004",
     "n4 is not among the members of the CA"),
    (None, [], CLUSTER + ",n4=db4.example:7004,n5=db5.example:7005", "a new cluster configuration"),
    (None, ["--days", "0"], CLUSTER, "out of range"),
    (None, ["--days", str(certs.MAX_DAYS + 1)], CLUSTER, "out of range"),
    (None, ["--days", "4000"], CLUSTER, "outlive its CA"),
    (None, ["--san", "not a host"], CLUSTER, "neither an IP address nor a host name"),
])
def test_every_refusal_changes_nothing(ca_dir: pathlib.Path,
                                       prepare: Callable[[pathlib.Path], None] | None,
                                       flags: list[str], cluster: str, says: str) -> None:
    if prepare is not None:
        prepare(ca_dir)
    before = snapshot(ca_dir)
    result = renew(ca_dir, *flags, cluster=cluster)
    assert result.exit_code == 1 and says in " ".join(result.output.split()), result.output
    assert snapshot(ca_dir) == before
    assert not list(ca_dir.glob(".*"))  # no temporary file either


def test_a_directory_without_a_ca_is_refused(tmp_path: pathlib.Path) -> None:
    (tmp_path / "empty").mkdir()
    result = renew(tmp_path / "empty")
    assert result.exit_code == 1 and "no CA certificate" in result.output
    assert list((tmp_path / "empty").iterdir()) == []


def test_a_directory_where_a_file_goes_is_refused(ca_dir: pathlib.Path) -> None:
    (ca_dir / "n2.pem.previous").mkdir()
    before = snapshot(ca_dir)
    result = renew(ca_dir)
    assert result.exit_code == 1 and "is a directory" in result.output
    assert snapshot(ca_dir) == before


def test_a_failed_write_keeps_every_old_file(ca_dir: pathlib.Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    before = snapshot(ca_dir)
    real_fsync, calls = os.fsync, []

    def failing_fsync(descriptor: int) -> None:
        calls.append(descriptor)
        if len(calls) == 5:  # midway through the new files
            raise OSError(28, "No space left on device")
        real_fsync(descriptor)

    monkeypatch.setattr(os, "fsync", failing_fsync)
    result = renew(ca_dir)
    assert result.exit_code == 1 and "No space left on device" in result.output
    assert snapshot(ca_dir) == before
    assert not list(ca_dir.glob(".*"))


@pytest.mark.parametrize("fail_at", range(1, 5))
def test_an_interrupted_swap_leaves_a_matching_pair(ca_dir: pathlib.Path,
                                                    monkeypatch: pytest.MonkeyPatch,
                                                    fail_at: int) -> None:
    """A renames fail (a crash, as far as the files can tell): the live pair or the kept
    previous pair is whole, and a renewal after it restores a whole live pair without
    overwriting that good previous pair."""
    old = a_pair(ca_dir, "n1")
    real_replace, calls = os.replace, []

    def failing_replace(source: str | os.PathLike[str], target: str | os.PathLike[str]) -> None:
        calls.append(target)
        if len(calls) == fail_at:  # 1, 2: the previous pair; 3: the key; 4: the certificate
            raise OSError(5, "Input/output error")
        real_replace(source, target)

    monkeypatch.setattr(os, "replace", failing_replace)
    result = renew(ca_dir, "--member", "n1")
    assert result.exit_code == 1 and "cannot replace" in result.output
    assert not list(ca_dir.glob(".*"))
    monkeypatch.setattr(os, "replace", real_replace)
    live = a_pair(ca_dir, "n1")
    if fail_at <= 3:
        assert live == old  # nothing live was touched yet
    else:  # the new key beside the old certificate: the previous pair is the old one
        assert live[0] == old[0] and live[1] != old[1]
        assert a_pair(ca_dir, "n1", ".previous") == old

    again = renew(ca_dir, "--member", "n1")
    assert again.exit_code == 0, again.output
    assert_pair_loads(ca_dir, "n1")
    assert a_pair(ca_dir, "n1", ".previous") == old  # the last good pair, kept
    assert_pair_loads(ca_dir, "n1", ".previous")
