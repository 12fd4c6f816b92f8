"""Client TLS settings from flags and the environment, the revocation list's format and
reloading, and reading a principal from a certificate."""

from __future__ import annotations

import pathlib

import pytest

from ledger.node.cluster import ClusterConfig
from ledger.security import certs
from ledger.security.authn import Authenticator, Unauthenticated
from ledger.security.principal import ANONYMOUS, Role
from ledger.security.revocation import RevocationList, RevocationListError, parse
from ledger.security.tls import INSECURE, SecurityConfigError, client_security


@pytest.fixture(scope="module")
def ca_dir(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    out = tmp_path_factory.mktemp("ca")
    certs.write_init(out, ClusterConfig.parse("n1=127.0.0.1:7001,n2=127.0.0.1:7002"))
    certs.write_client(out, "alice", (Role.TELLER, Role.AUDITOR), out)
    return out


def test_flags_win_over_the_environment_and_plaintext_is_asked_for_by_name(
        ca_dir: pathlib.Path) -> None:
    files = {"LEDGER_CA": str(ca_dir / "ca.pem"), "LEDGER_CERT": str(ca_dir / "alice.pem"),
             "LEDGER_KEY": str(ca_dir / "alice-key.pem")}
    from_env = client_security(environ=files)
    assert from_env.material is not None
    assert from_env.material.certificate == (ca_dir / "alice.pem").read_bytes()
    flagged = client_security(cert=str(ca_dir / "n1.pem"), key=str(ca_dir / "n1-key.pem"),
                              environ=files)
    assert flagged.material is not None
    assert flagged.material.certificate == (ca_dir / "n1.pem").read_bytes()
    assert client_security(insecure=True, environ=files) is INSECURE
    assert client_security(environ={"LEDGER_INSECURE": "1"}) is INSECURE
    # A certificate in the environment outranks LEDGER_INSECURE: never plaintext by accident.
    assert client_security(environ={**files, "LEDGER_INSECURE": "1"}).material is not None


def test_no_certificate_says_which_variables_to_set(ca_dir: pathlib.Path) -> None:
    with pytest.raises(SecurityConfigError) as nothing:
        client_security(environ={})
    assert "no client certificate: set LEDGER_CA, LEDGER_CERT and LEDGER_KEY" in str(
        nothing.value)
    with pytest.raises(SecurityConfigError) as partial:
        client_security(environ={"LEDGER_CA": str(ca_dir / "ca.pem")})
    assert "LEDGER_CERT, LEDGER_KEY unset" in str(partial.value)
    with pytest.raises(SecurityConfigError) as missing:
        client_security(ca=str(ca_dir / "nope.pem"), cert=str(ca_dir / "alice.pem"),
                        key=str(ca_dir / "alice-key.pem"), environ={})
    assert "cannot read the CA certificate" in str(missing.value)
    with pytest.raises(SecurityConfigError) as not_pem:
        client_security(ca=str(ca_dir / "ca-private" / "members.txt"),
                        cert=str(ca_dir / "alice.pem"), key=str(ca_dir / "alice-key.pem"),
                        environ={})
    assert "is not a PEM file" in str(not_pem.value)


def test_the_revocation_list_takes_names_and_serials_whole_or_not_at_all() -> None:
    revoked = parse("# comment\nmallory\n\nserial:0A1b  # one certificate\nSERIAL:ff:01\n")
    assert revoked.names == {"mallory"} and revoked.serials == {0x0A1B, 0xFF01}
    with pytest.raises(RevocationListError) as bad:
        parse("mallory\nnot a name\n")
    assert "line 2" in str(bad.value)
    with pytest.raises(RevocationListError):
        parse("serial:xyz")


def test_a_changed_list_is_reloaded_and_a_bad_one_keeps_the_last_good_one(
        tmp_path: pathlib.Path, ca_dir: pathlib.Path) -> None:
    path = tmp_path / "revoked.txt"
    revocations = RevocationList(path)  # no file: nothing revoked
    authenticator = Authenticator(False, revocations)
    pem = (ca_dir / "alice.pem").read_bytes()
    context = {"x509_pem_cert": [pem]}
    alice = authenticator.principal(context)
    assert alice.name == "alice" and alice.roles == {Role.TELLER, Role.AUDITOR}
    path.write_text("alice\n")
    revocations.reload()
    with pytest.raises(Unauthenticated, match="the certificate of alice is revoked"):
        authenticator.principal(context)
    path.write_text("alice\nbad name!\n")
    revocations.reload()  # logged as an error; the list in force stays
    with pytest.raises(Unauthenticated):
        authenticator.principal(context)
    path.write_text("")
    revocations.reload()
    assert authenticator.principal(context).name == "alice"
    path.write_text("bad name!\n")
    with pytest.raises(RevocationListError):
        RevocationList(path)  # at start a bad list stops the node


def test_a_call_without_a_usable_certificate_is_unauthenticated(ca_dir: pathlib.Path) -> None:
    authenticator = Authenticator(False)
    with pytest.raises(Unauthenticated, match="carries no client certificate"):
        authenticator.principal({})
    with pytest.raises(Unauthenticated, match="names no usable principal"):
        authenticator.principal({"x509_pem_cert": [b"-----BEGIN CERTIFICATE-----\nxx\n"]})
    assert Authenticator(True).principal({}) is ANONYMOUS


def test_an_expired_principal_is_refused_at_its_next_request() -> None:
    from ledger.security.principal import Principal

    authenticator = Authenticator(False)
    current = Principal("alice", frozenset({Role.TELLER}), 7, not_after_s=4e9)
    authenticator.check_still_valid(current)
    expired = Principal("alice", frozenset({Role.TELLER}), 7, not_after_s=1.0)
    with pytest.raises(Unauthenticated, match="the certificate of alice has expired"):
        authenticator.check_still_valid(expired)


def test_a_certificate_read_carries_its_expiry(ca_dir: pathlib.Path) -> None:
    principal = Authenticator(False).principal(
        {"x509_pem_cert": [(ca_dir / "alice.pem").read_bytes()]})
    assert principal.not_after_s is not None and principal.not_after_s > 1.7e9
