"""`ledger certs init` and `ledger certs issue`: the files, their modes, what the certificates
say, every refusal (with nothing written), and a real mutual-TLS handshake through grpc."""

from __future__ import annotations

import datetime
import os
import pathlib
import re
import stat
from concurrent import futures
from ipaddress import ip_address

import grpc
import pytest
from click.testing import CliRunner, Result
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from ledger.cli.main import main
from ledger.node.cluster import ClusterConfig
from ledger.security import certs
from ledger.security.principal import Principal, Role, principal_of_pem

CLUSTER = "n1=127.0.0.1:7001,n2=db2.example:7002"
SKEW = datetime.timedelta(minutes=certs.CLOCK_SKEW_MINUTES)


def ledger(*args: str | os.PathLike[str]) -> Result:
    return CliRunner().invoke(main, [str(arg) for arg in args], catch_exceptions=False)


def init(out: pathlib.Path, *extra: str, cluster: str = CLUSTER) -> Result:
    result = ledger("certs", "init", "--cluster", cluster, "--out", out, *extra)
    assert result.exit_code == 0, result.output
    return result


def issue(ca_dir: pathlib.Path, name: str, *extra: str) -> Result:
    # NAME after `--`, so that even a name like "-alice" reaches the check of names.
    return ledger("certs", "issue", "--ca-dir", ca_dir, *extra, "--", name)


def certificate(path: pathlib.Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def mode(path: pathlib.Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def snapshot(directory: pathlib.Path) -> dict[str, bytes]:
    """Every file under `directory`, by relative path (to show nothing changed)."""
    return {str(path.relative_to(directory)): path.read_bytes()
            for path in sorted(directory.rglob("*")) if path.is_file()}


def lifetime(cert: x509.Certificate) -> datetime.timedelta:
    return cert.not_valid_after_utc - cert.not_valid_before_utc


@pytest.fixture
def ca_dir(tmp_path: pathlib.Path) -> pathlib.Path:
    out = tmp_path / "tls"
    init(out, "--san", "localhost", "--san", "10.0.0.9")
    return out


# --- init ---------------------------------------------------------------------------


def test_init_writes_the_nodes_files_and_keeps_the_ca_key_apart(tmp_path: pathlib.Path) -> None:
    out = tmp_path / "tls"
    result = init(out)
    shipped = {path.name for path in out.iterdir() if path.is_file()}
    assert shipped == {"ca.pem", "n1.pem", "n1-key.pem", "n2.pem", "n2-key.pem"}
    assert sorted(path.name for path in (out / "ca-private").iterdir()) == [
        "ca-key.pem", "members.txt"]
    for key in ("n1-key.pem", "n2-key.pem", "ca-private/ca-key.pem"):
        assert mode(out / key) == 0o600, key
    assert mode(out / "ca-private") == 0o700
    for cert in ("ca.pem", "n1.pem", "n2.pem"):
        assert mode(out / cert) & 0o022 == 0, cert  # nobody else may change a certificate
    assert "ca-private" in result.output and "ledger certs issue" in result.output
    for name in ("ca.pem", "n1.pem", "n1-key.pem"):
        assert name in result.output


def test_the_ca_signs_leaves_only(ca_dir: pathlib.Path) -> None:
    ca = certificate(ca_dir / "ca.pem")
    constraints = ca.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca and constraints.value.path_length == 0
    usage = ca.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.key_cert_sign and usage.value.crl_sign
    assert ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)


def test_member_certificates_name_the_member_and_its_hosts(ca_dir: pathlib.Path) -> None:
    ca = certificate(ca_dir / "ca.pem")
    expected_hosts = {
        "n1": {x509.IPAddress(ip_address("127.0.0.1")),
               x509.DNSName("localhost"),
               x509.IPAddress(ip_address("10.0.0.9"))},
        "n2": {x509.DNSName("db2.example"), x509.DNSName("localhost"),
               x509.IPAddress(ip_address("10.0.0.9"))},
    }
    for node_id, hosts in expected_hosts.items():
        pem = (ca_dir / f"{node_id}.pem").read_bytes()
        cert = x509.load_pem_x509_certificate(pem)
        cert.verify_directly_issued_by(ca)
        principal = principal_of_pem(pem)
        assert (principal.name, principal.roles) == (node_id, frozenset({Role.MEMBER}))
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert set(names.get_values_for_type(x509.UniformResourceIdentifier)) == {
            f"urn:ledger:name:{node_id}", "urn:ledger:role:member"}
        assert {n for n in names if not isinstance(n, x509.UniformResourceIdentifier)} == hosts
        assert cert.subject.rfc4514_string() == f"CN={node_id}"
        usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert set(usages) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints)
        assert constraints.critical and not constraints.value.ca
        assert cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier)


def test_init_refuses_a_directory_that_holds_a_ca(ca_dir: pathlib.Path) -> None:
    before = snapshot(ca_dir)
    result = ledger("certs", "init", "--cluster", "n9=127.0.0.1:7009", "--out", ca_dir)
    assert result.exit_code == 1
    assert "already holds a CA" in result.output and "ca.pem" in result.output
    assert snapshot(ca_dir) == before


def test_init_refuses_any_file_it_would_write_and_writes_nothing(tmp_path: pathlib.Path) -> None:
    out = tmp_path / "tls"
    out.mkdir()
    (out / "n2.pem").write_text("someone's\n")
    result = ledger("certs", "init", "--cluster", CLUSTER, "--out", out)
    assert result.exit_code == 1 and "n2.pem" in result.output
    assert snapshot(out) == {"n2.pem": b"someone's\n"}


def test_a_failure_midway_leaves_no_half_set(tmp_path: pathlib.Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "tls"
    out.mkdir()
    (out / "notes.txt").write_text("someone's\n")
    real_fsync, calls = os.fsync, []

    def fsync_until_the_disk_fills(descriptor: int) -> None:
        calls.append(descriptor)
        if len(calls) == 4:  # ca.pem, n1.pem and n1-key.pem are on disk by now
            raise OSError(28, "No space left on device")
        real_fsync(descriptor)

    monkeypatch.setattr(os, "fsync", fsync_until_the_disk_fills)
    result = ledger("certs", "init", "--cluster", CLUSTER, "--out", out)
    assert result.exit_code == 1, result.output
    assert "No space left on device" in result.output and "nothing kept" in result.output
    assert snapshot(out) == {"notes.txt": b"someone's\n"}
    assert [path.name for path in out.iterdir()] == ["notes.txt"]


def test_init_refuses_a_ca_private_that_is_no_directory(tmp_path: pathlib.Path) -> None:
    out = tmp_path / "tls"
    out.mkdir()
    (out / "ca-private").write_text("not a directory\n")
    result = ledger("certs", "init", "--cluster", CLUSTER, "--out", out)
    assert result.exit_code == 1 and "is not a directory" in result.output
    assert snapshot(out) == {"ca-private": b"not a directory\n"}


@pytest.mark.parametrize(("flags", "message"), [
    (["--cluster", "n1=127.0.0.1"], "--cluster"),
    (["--cluster", "n1=127.0.0.1:7001", "--san", "not a host"], "neither an IP address"),
    (["--cluster", "ca=127.0.0.1:7001"], "reserved"),
])
def test_init_refuses_a_bad_cluster_or_host(tmp_path: pathlib.Path, flags: list[str],
                                            message: str) -> None:
    result = ledger("certs", "init", "--out", tmp_path / "tls", *flags)
    assert result.exit_code != 0 and message in result.output
    assert not (tmp_path / "tls").exists()


# --- issue --------------------------------------------------------------------------


def test_issue_makes_a_client_certificate_with_exactly_its_roles(
        ca_dir: pathlib.Path, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # --out defaults to the current directory
    result = issue(ca_dir, "alice", "--role", "teller", "--role", "AUDITOR")
    assert result.exit_code == 0, result.output
    cert_path, key_path = tmp_path / "alice.pem", tmp_path / "alice-key.pem"
    assert mode(key_path) == 0o600
    cert = certificate(cert_path)
    cert.verify_directly_issued_by(certificate(ca_dir / "ca.pem"))
    assert principal_of_pem(cert_path.read_bytes()) == Principal(
        "alice", frozenset({Role.TELLER, Role.AUDITOR}), cert.serial_number,
        cert.not_valid_after_utc.timestamp())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert all(isinstance(name, x509.UniformResourceIdentifier) for name in names)
    usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usages) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert cert.subject.rfc4514_string() == "CN=alice"
    assert (f"export LEDGER_CA={(ca_dir / 'ca.pem').absolute()} LEDGER_CERT={cert_path} "
            f"LEDGER_KEY={key_path}") in result.output
    assert re.search(rf"\bserial:{cert.serial_number:X}\b", result.output)


@pytest.mark.parametrize(("name", "roles", "message"), [
    ("n1", ["teller"], "member id"),
    ("N2", ["operator"], "member id"),
    ("ca", ["teller"], "reserved"),
    ("anonymous", ["auditor"], "reserved"),
    ("-alice", ["teller"], "cannot name a principal"),
    ("al ice", ["teller"], "cannot name a principal"),
    ("bob", ["member"], "only by `ledger certs init`"),
    ("bob", ["teller", "member"], "only by `ledger certs init`"),
])
def test_issue_refuses(ca_dir: pathlib.Path, tmp_path: pathlib.Path, name: str,
                       roles: list[str], message: str) -> None:
    out = tmp_path / "clients"
    role_flags = [flag for role in roles for flag in ("--role", role)]
    result = issue(ca_dir, name, *role_flags, "--out", str(out))
    assert result.exit_code == 1, result.output
    assert message in result.output
    assert not out.exists()


def test_issue_refuses_an_unknown_role(ca_dir: pathlib.Path, tmp_path: pathlib.Path) -> None:
    result = issue(ca_dir, "bob", "--role", "boss", "--out", str(tmp_path / "clients"))
    assert result.exit_code == 2 and "teller, auditor, operator" in result.output
    assert not (tmp_path / "clients").exists()


@pytest.mark.parametrize("kept", ["certificates", "members.txt"])
def test_member_ids_come_from_either_source(ca_dir: pathlib.Path, tmp_path: pathlib.Path,
                                            kept: str) -> None:
    if kept == "certificates":
        (ca_dir / "ca-private" / "members.txt").unlink()
    else:  # the member certificates have been moved off to the nodes
        for node_id in ("n1", "n2"):
            (ca_dir / f"{node_id}.pem").unlink()
    assert certs.member_ids(ca_dir) == {"n1", "n2"}
    result = issue(ca_dir, "n1", "--role", "teller", "--out", str(tmp_path / "clients"))
    assert result.exit_code == 1 and "member id" in result.output


def test_issue_refuses_to_overwrite(ca_dir: pathlib.Path, tmp_path: pathlib.Path) -> None:
    out = tmp_path / "clients"
    assert issue(ca_dir, "alice", "--role", "teller", "--out", str(out)).exit_code == 0
    before = snapshot(out)
    result = issue(ca_dir, "alice", "--role", "auditor", "--out", str(out))
    assert result.exit_code == 1 and "alice.pem" in result.output
    assert snapshot(out) == before


def test_issue_without_the_ca_key_names_both_places(ca_dir: pathlib.Path,
                                                    tmp_path: pathlib.Path) -> None:
    (ca_dir / "ca-private" / "ca-key.pem").unlink()
    out = tmp_path / "clients"
    result = issue(ca_dir, "alice", "--role", "teller", "--out", str(out))
    assert result.exit_code == 1
    assert str(ca_dir / "ca-private" / "ca-key.pem") in result.output
    assert str(ca_dir / "ca-key.pem") in result.output
    assert not out.exists()


def test_issue_finds_a_ca_key_beside_the_ca(ca_dir: pathlib.Path, tmp_path: pathlib.Path) -> None:
    (ca_dir / "ca-private" / "ca-key.pem").rename(ca_dir / "ca-key.pem")
    result = issue(ca_dir, "alice", "--role", "operator", "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert principal_of_pem((tmp_path / "alice.pem").read_bytes()).roles == {Role.OPERATOR}


def test_issue_refuses_a_ca_key_of_another_ca(ca_dir: pathlib.Path,
                                              tmp_path: pathlib.Path) -> None:
    other = tmp_path / "other"
    init(other)
    (ca_dir / "ca-private" / "ca-key.pem").unlink()
    (other / "ca-private" / "ca-key.pem").rename(ca_dir / "ca-private" / "ca-key.pem")
    result = issue(ca_dir, "alice", "--role", "teller", "--out", str(tmp_path / "clients"))
    assert result.exit_code == 1 and "does not belong to" in result.output
    assert not (tmp_path / "clients").exists()


# --- lifetimes ----------------------------------------------------------------------


def test_lifetimes_default_and_honour_the_flags(tmp_path: pathlib.Path) -> None:
    defaults, chosen = tmp_path / "defaults", tmp_path / "chosen"
    init(defaults)
    init(chosen, "--days", "30", "--ca-days", "100")
    assert lifetime(certificate(defaults / "ca.pem")) == datetime.timedelta(days=3650) + SKEW
    assert lifetime(certificate(defaults / "n1.pem")) == datetime.timedelta(days=365) + SKEW
    assert lifetime(certificate(chosen / "ca.pem")) == datetime.timedelta(days=100) + SKEW
    assert lifetime(certificate(chosen / "n2.pem")) == datetime.timedelta(days=30) + SKEW
    now = datetime.datetime.now(datetime.UTC)
    assert certificate(chosen / "n1.pem").not_valid_before_utc <= now - SKEW + datetime.timedelta(
        seconds=60)  # started in the past, for clocks that lag
    out = tmp_path / "clients"
    assert issue(chosen, "alice", "--role", "teller", "--days", "7", "--out", str(out)
                 ).exit_code == 0
    assert lifetime(certificate(out / "alice.pem")) == datetime.timedelta(days=7) + SKEW


@pytest.mark.parametrize("days", ["0", "-1", str(2 * 3650 + 1)])
def test_lifetimes_out_of_range_are_refused(tmp_path: pathlib.Path, days: str) -> None:
    for flag in ("--days", "--ca-days"):
        result = ledger("certs", "init", "--cluster", CLUSTER, "--out", tmp_path / "tls",
                        flag, days)
        assert result.exit_code == 2 and flag in result.output
    assert not (tmp_path / "tls").exists()
    with pytest.raises(certs.CertificateError, match="out of range"):
        certs.check_days(int(days))


def test_no_certificate_outlives_its_ca(tmp_path: pathlib.Path) -> None:
    result = ledger("certs", "init", "--cluster", CLUSTER, "--out", tmp_path / "tls",
                    "--days", "400", "--ca-days", "100")
    assert result.exit_code == 1 and "outlive its CA" in result.output
    assert not (tmp_path / "tls").exists()
    init(tmp_path / "even", "--days", "100", "--ca-days", "100")  # ends with the CA: fine
    ca = certificate(tmp_path / "even" / "ca.pem")
    assert certificate(tmp_path / "even" / "n1.pem").not_valid_after_utc <= ca.not_valid_after_utc


# --- as plain functions (what `ledger cluster up` calls) -----------------------------


def test_write_init_and_write_client_as_functions(tmp_path: pathlib.Path) -> None:
    out = tmp_path / "tls"
    written = certs.write_init(out, ClusterConfig.parse("a=[::1]:7001,b=host.example:7002"),
                               sans=["localhost"])
    assert set(written) == {out / name for name in (
        "ca.pem", "a.pem", "a-key.pem", "b.pem", "b-key.pem", "ca-private/ca-key.pem",
        "ca-private/members.txt")}
    names = certificate(out / "a.pem").extensions.get_extension_for_class(
        x509.SubjectAlternativeName).value
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["::1"]
    with pytest.raises(certs.CertificateError, match="already holds a CA"):
        certs.write_init(out, ClusterConfig.parse("a=[::1]:7001"))
    issued = certs.write_client(out, "carol", [Role.AUDITOR], tmp_path / "clients")
    assert issued.paths == (tmp_path / "clients" / "carol.pem",
                            tmp_path / "clients" / "carol-key.pem")
    assert issued.serial == certificate(issued.certificate_path).serial_number
    assert issued.serial_entry == f"serial:{issued.serial:X}"
    with pytest.raises(certs.CertificateError, match="member id"):
        certs.write_client(out, "b", [Role.TELLER], tmp_path / "clients")


# --- a real handshake ----------------------------------------------------------------


def check_health(port: int, ca: bytes, key: bytes, cert: bytes) -> int:
    credentials = grpc.ssl_channel_credentials(ca, key, cert)
    with grpc.secure_channel(f"127.0.0.1:{port}", credentials) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=""), timeout=10)
    return reply.status


def test_mutual_tls_admits_our_clients_only(tmp_path: pathlib.Path) -> None:
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    init(ours, cluster="n1=127.0.0.1:7001")
    init(theirs, cluster="n1=127.0.0.1:7001")
    for ca_dir, out in ((ours, tmp_path / "alice"), (theirs, tmp_path / "mallory")):
        result = issue(ca_dir, "alice", "--role", "teller", "--out", str(out))
        assert result.exit_code == 0, result.output
    ca = (ours / "ca.pem").read_bytes()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    health_pb2_grpc.add_HealthServicer_to_server(health.HealthServicer(), server)
    credentials = grpc.ssl_server_credentials(
        [((ours / "n1-key.pem").read_bytes(), (ours / "n1.pem").read_bytes())],
        root_certificates=ca, require_client_auth=True)
    port = server.add_secure_port("127.0.0.1:0", credentials)
    server.start()
    try:
        alice = tmp_path / "alice"
        serving = health_pb2.HealthCheckResponse.SERVING
        assert check_health(port, ca, (alice / "alice-key.pem").read_bytes(),
                            (alice / "alice.pem").read_bytes()) == serving
        # A member certificate dials too (nodes call their peers with it).
        assert check_health(port, ca, (ours / "n1-key.pem").read_bytes(),
                            (ours / "n1.pem").read_bytes()) == serving
        mallory = tmp_path / "mallory"
        with pytest.raises(grpc.RpcError) as caught:
            check_health(port, ca, (mallory / "alice-key.pem").read_bytes(),
                         (mallory / "alice.pem").read_bytes())
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        server.stop(grace=None)
