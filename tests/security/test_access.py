"""Who may do what, against real `ledger serve` processes with mutual TLS: strangers and
plaintext are turned away, each role does exactly what its row of the table allows,
the peer service answers only the members' own certificates, revocation bites, and the
history names who did each write, also when it was forwarded to the leader."""

from __future__ import annotations

import datetime
import os
import pathlib
import signal
from collections.abc import Iterator

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from ledger.client import (
    INSECURE,
    LedgerClient,
    PermissionDenied,
    Security,
    Unauthenticated,
    Unavailable,
)
from ledger.client.admin import node_counters, status_pages
from ledger.node.cluster import ClusterConfig
from ledger.security import certs
from ledger.security.principal import Role
from ledger.security.tls import TlsMaterial, load_material, load_member
from ledger.tools.localcluster import ProcessCluster
from ledger.v1 import ledger_pb2 as lpb
from ledger.v1 import ledger_pb2_grpc as lpb_grpc
from ledger.v1 import replica_pb2 as pb
from ledger.v1 import replica_pb2_grpc as pb_grpc
from tests.support.cli import TELLER, run
from tests.support.clusters import servers_flag
from tests.support.nodes import converged
from tests.support.polling import eventually

pytestmark = pytest.mark.xdist_group("processes")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProcessCluster]:
    with ProcessCluster(tmp_path_factory.mktemp("access") / "cluster", 3) as running:
        yield running


def issued(cluster: ProcessCluster, name: str, *roles: Role) -> Security:
    """A client certificate from the cluster's CA (made once per name)."""
    out = cluster.base_dir / "issued"
    out.mkdir(exist_ok=True)
    if not (out / f"{name}.pem").exists():
        certs.write_client(cluster.tls_dir, name, roles, out)
    return Security(load_material(cluster.tls_dir / "ca.pem", out / f"{name}.pem",
                                  out / f"{name}-key.pem"))


def as_member(cluster: ProcessCluster, node_id: str) -> Security:
    return Security(load_member(cluster.tls_dir, node_id))


def bank(cluster: ProcessCluster, security: Security, index: int | None = None,
         timeout_s: float = 10) -> LedgerClient:
    addresses = cluster.addresses if index is None else [cluster.addresses[index]]
    return LedgerClient(addresses, timeout_s=timeout_s, security=security)


def history(cluster: ProcessCluster, account: str) -> list[tuple[str, int, str]]:
    with bank(cluster, cluster.security) as reader:
        return [(e.kind, e.amount, e.principal) for e in reader.history(account)]


# ------------------------------------------------------------------ strangers


def test_a_plaintext_client_is_turned_away(cluster: ProcessCluster) -> None:
    with (bank(cluster, INSECURE, timeout_s=2) as plaintext,
          pytest.raises(Unavailable) as refused):
        plaintext.balance("nobody")
    assert "refuses the TLS handshake" in str(refused.value)  # and says what to set:
    assert "set LEDGER_CA, LEDGER_CERT and LEDGER_KEY" in str(refused.value)


def test_a_client_without_a_certificate_fails_the_handshake(cluster: ProcessCluster) -> None:
    ca = (cluster.tls_dir / "ca.pem").read_bytes()
    anonymous_tls = grpc.ssl_channel_credentials(root_certificates=ca)  # trusts, presents none
    with (grpc.secure_channel(cluster.addresses[0], anonymous_tls) as channel,
          pytest.raises(grpc.RpcError) as refused):
        lpb_grpc.LedgerStub(channel).GetBalance(lpb.GetBalanceRequest(account_id="x"),
                                               timeout=5)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE


def test_the_teller_says_which_variables_to_set_without_a_certificate(
        cluster: ProcessCluster) -> None:
    bare = {name: "" for name in ("LEDGER_CA", "LEDGER_CERT", "LEDGER_KEY", "LEDGER_INSECURE")}
    result = run([*TELLER, "--servers", servers_flag(cluster), "balance", "x"], env=bare)
    assert result.returncode == 2
    assert "LEDGER_CA, LEDGER_CERT and LEDGER_KEY" in result.stderr
    # A CA alone (no certificate of its own) is named as what is missing.
    only_ca = {**bare, "LEDGER_CA": str(cluster.tls_dir / "ca.pem")}
    result = run([*TELLER, "--servers", servers_flag(cluster), "balance", "x"], env=only_ca)
    assert result.returncode == 2 and "LEDGER_CERT, LEDGER_KEY unset" in result.stderr


def test_a_certificate_from_another_ca_is_refused(cluster: ProcessCluster,
                                                  tmp_path: pathlib.Path) -> None:
    other = tmp_path / "other-ca"
    certs.write_init(other, ClusterConfig.parse(cluster.cluster_flag))
    made = certs.write_client(other, "impostor", (Role.TELLER,), tmp_path)
    own_ca = (cluster.tls_dir / "ca.pem").read_bytes()
    impostor = Security(TlsMaterial(own_ca, made.certificate_path.read_bytes(),
                                    made.key_path.read_bytes()))
    with bank(cluster, impostor, timeout_s=2) as stranger, pytest.raises(Unavailable):
        stranger.open_account("minted", 1_000_000)
    assert not any(e for e in _accounts(cluster) if e == "minted")


def _accounts(cluster: ProcessCluster) -> list[str]:
    with bank(cluster, cluster.security) as reader:
        return reader.list_accounts()


def signed_by_the_cluster_ca(cluster: ProcessCluster, valid_from: datetime.timedelta,
                             valid_for: datetime.timedelta,
                             uris: tuple[str, ...] = ()) -> Security:
    """A client certificate the cluster's CA signs, made by hand: what `certs issue`
    would never make (no principal, already expired)."""
    ca_certificate, ca_key = certs.load_ca(cluster.tls_dir)
    key = ec.generate_private_key(ec.SECP256R1())
    start = datetime.datetime.now(datetime.UTC) + valid_from
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME,
                                                           "hand-made")]))
               .issuer_name(ca_certificate.subject).public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(start).not_valid_after(start + valid_for))
    if uris:
        builder = builder.add_extension(x509.SubjectAlternativeName(
            [x509.UniformResourceIdentifier(uri) for uri in uris]), critical=False)
    made = builder.sign(ca_key, hashes.SHA256())
    return Security(TlsMaterial((cluster.tls_dir / "ca.pem").read_bytes(),
                                certs.pem_of(made), certs.key_pem(key)))


def test_a_certificate_naming_no_principal_is_unauthenticated(cluster: ProcessCluster) -> None:
    """Signed by the cluster's own CA, but without the principal's URIs: the handshake
    passes, every call is refused UNAUTHENTICATED."""
    nameless = signed_by_the_cluster_ca(cluster, -datetime.timedelta(minutes=5),
                                        datetime.timedelta(days=1))
    with bank(cluster, nameless, index=0) as caller, pytest.raises(Unauthenticated) as refused:
        caller.open_account("nameless", 5)
    assert "names no usable principal" in str(refused.value)


def test_an_expired_certificate_fails_the_handshake(cluster: ProcessCluster) -> None:
    expired = signed_by_the_cluster_ca(
        cluster, -datetime.timedelta(days=2), datetime.timedelta(days=1),
        ("urn:ledger:name:late", "urn:ledger:role:teller"))
    with bank(cluster, expired, timeout_s=2) as late, pytest.raises(Unavailable):
        late.open_account("expired", 5)
    assert "expired" not in _accounts(cluster)


# ------------------------------------------------------------------ roles


def test_a_teller_deposits_and_withdraws_and_history_names_them(
        cluster: ProcessCluster) -> None:
    with bank(cluster, issued(cluster, "alice", Role.TELLER)) as alice:
        alice.open_account("acc-teller", 100)
        alice.deposit("acc-teller", 50)
        assert alice.withdraw("acc-teller", 30).balance == 120
        assert alice.balance("acc-teller").balance == 120
    assert history(cluster, "acc-teller") == [
        ("open", 100, "alice"), ("deposit", 50, "alice"), ("withdrawal", 30, "alice")]


def test_an_auditor_reads_but_may_not_deposit(cluster: ProcessCluster) -> None:
    with bank(cluster, cluster.security) as local:
        local.open_account("acc-audit", 10)
    with bank(cluster, issued(cluster, "audrey", Role.AUDITOR)) as auditor:
        assert auditor.balance("acc-audit").balance == 10
        assert [e.kind for e in auditor.history("acc-audit")] == ["open"]
        assert "acc-audit" in auditor.list_accounts()
        with pytest.raises(PermissionDenied) as denied:
            auditor.deposit("acc-audit", 5)  # over the client's write stream
        assert "audrey (roles: auditor) may not call /ledger.v1.Ledger/SubmitStream" in str(
            denied.value)
        with pytest.raises(PermissionDenied):
            auditor.submit([])
    with LedgerClient(cluster.addresses, security=issued(cluster, "audrey", Role.AUDITOR),
                      stream_writes=False) as unary:
        with pytest.raises(PermissionDenied) as denied:
            unary.deposit("acc-audit", 5)
        assert "audrey (roles: auditor) may not call /ledger.v1.Ledger/Deposit" in str(
            denied.value)
        with pytest.raises(PermissionDenied):
            unary.submit([])
    assert history(cluster, "acc-audit") == [("open", 10, "local")]  # nothing written


def test_an_operator_reads_status_but_may_not_move_money(cluster: ProcessCluster) -> None:
    operator = issued(cluster, "olga", Role.OPERATOR)
    pages = status_pages(cluster.addresses[0], 5, operator)
    assert pages and pages[0].node_id == "n1"
    with bank(cluster, operator) as caller, pytest.raises(PermissionDenied):
        caller.open_account("acc-operator", 1)
    with bank(cluster, operator) as caller, pytest.raises(PermissionDenied):
        caller.balance("acc-audit")  # balances are for tellers and auditors
    # And a teller may not read the node's status (nor its log, which holds memos).
    with pytest.raises(grpc.RpcError) as denied:
        status_pages(cluster.addresses[0], 5, issued(cluster, "alice", Role.TELLER))
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "acc-operator" not in _accounts(cluster)


# ------------------------------------------------------------------ the peer service


def test_a_client_certificate_cannot_call_the_peer_service(cluster: ProcessCluster) -> None:
    fingerprint = ClusterConfig.parse(cluster.cluster_flag).fingerprint
    everyone = cluster.security  # teller, auditor and operator: still not a member
    with everyone.channel(cluster.addresses[0]) as channel:
        stub = pb_grpc.ReplicaStub(channel)
        for call in (
            lambda: stub.Identify(pb.IdentifyRequest(cluster_fingerprint=fingerprint,
                                                     node_id="n2"), timeout=5),
            lambda: stub.Step(pb.StepRequest(cluster_fingerprint=fingerprint,
                                             source_node_id="n2"), timeout=5),
            lambda: list(stub.Stream(iter([pb.StepRequest(cluster_fingerprint=fingerprint,
                                                          source_node_id="n2")]), timeout=5)),
        ):
            with pytest.raises(grpc.RpcError) as refused:
                call()
            assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
            assert "may not call /ledger.v1.Replica/" in (refused.value.details() or "")


def test_a_member_claiming_another_members_id_is_refused(cluster: ProcessCluster) -> None:
    fingerprint = ClusterConfig.parse(cluster.cluster_flag).fingerprint
    with as_member(cluster, "n3").channel(cluster.addresses[1]) as channel:
        stub = pb_grpc.ReplicaStub(channel)
        with pytest.raises(grpc.RpcError) as refused:
            stub.Step(pb.StepRequest(cluster_fingerprint=fingerprint, source_node_id="n1"),
                      timeout=5)
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert ("member n3's, but its message claims to come from 'n1'"
                in (refused.value.details() or ""))
        with pytest.raises(grpc.RpcError) as rejoin:
            stub.Rejoin(pb.RejoinRequest(cluster_fingerprint=fingerprint, node_id="n1"),
                        timeout=5)
        assert rejoin.value.code() == grpc.StatusCode.PERMISSION_DENIED
        # Its own id is answered.
        reply = stub.Identify(pb.IdentifyRequest(cluster_fingerprint=fingerprint,
                                                 node_id="n3"), timeout=5)
        assert reply.node_id == "n2" and reply.known


def test_only_members_may_submit_on_behalf_of_another(cluster: ProcessCluster) -> None:
    with bank(cluster, cluster.security) as local:
        local.open_account("acc-behalf", 10)
    deposit = lpb.BatchOperation(deposit=lpb.DepositRequest(
        account_id="acc-behalf", amount=5, request_id="behalf-1"))
    request = lpb.SubmitRequest(operations=[deposit], on_behalf_of=["somebody-else"])
    teller = issued(cluster, "alice", Role.TELLER)
    with (teller.channel(cluster.addresses[0]) as channel,
          pytest.raises(grpc.RpcError) as refused):
        lpb_grpc.LedgerStub(channel).Submit(request, timeout=5)
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with as_member(cluster, "n2").channel(cluster.addresses[0]) as channel:
        reply = lpb_grpc.LedgerStub(channel).Submit(request, timeout=10)
    assert reply.results[0].code == 0
    assert history(cluster, "acc-behalf") == [("open", 10, "local"),
                                             ("deposit", 5, "somebody-else")]


def test_only_members_may_stream_writes_on_behalf_of_another(cluster: ProcessCluster) -> None:
    with bank(cluster, cluster.security) as local:
        local.open_account("acc-behalf-stream", 10)
    deposit = lpb.BatchOperation(deposit=lpb.DepositRequest(
        account_id="acc-behalf-stream", amount=5, request_id="behalf-stream-1"))
    request = lpb.StreamRequest(tag=7, operations=[deposit], on_behalf_of=["somebody-else"])

    def streamed(security: Security) -> lpb.StreamReply:
        with security.channel(cluster.addresses[0]) as channel:
            [reply] = lpb_grpc.LedgerStub(channel).SubmitStream(iter([request]), timeout=10)
        return reply

    refused = streamed(issued(cluster, "alice", Role.TELLER))
    assert [(r.code, r.message) for r in refused.results] == [(
        grpc.StatusCode.PERMISSION_DENIED.value[0],
        "only cluster members may submit on behalf of another principal")]
    accepted = streamed(as_member(cluster, "n2"))
    assert (accepted.tag, accepted.results[0].code) == (7, 0)
    assert history(cluster, "acc-behalf-stream") == [("open", 10, "local"),
                                                    ("deposit", 5, "somebody-else")]


def test_a_write_forwarded_to_the_leader_keeps_its_principal(cluster: ProcessCluster) -> None:
    with bank(cluster, issued(cluster, "alice", Role.TELLER), index=0) as alice:
        alice.open_account("acc-forward", 0)
        for _ in range(5):  # n1 leads the account now (it holds its range promise)
            alice.deposit("acc-forward", 1)
    before = (node_counters(cluster.addresses[1], 5, cluster.security) or {})
    with bank(cluster, issued(cluster, "bob", Role.TELLER), index=1) as bob:
        for _ in range(5):
            bob.deposit("acc-forward", 2)
    after = (node_counters(cluster.addresses[1], 5, cluster.security) or {})
    assert after["forwarded_batches"] > before["forwarded_batches"]  # n2 forwarded to n1
    # ... over its write stream to n1, not a call per batch
    assert after["forward_messages"] > before.get("forward_messages", 0)
    assert history(cluster, "acc-forward") == [
        ("open", 0, "alice"), *[("deposit", 1, "alice")] * 5, *[("deposit", 2, "bob")] * 5]


# ------------------------------------------------------------------ revocation


def test_a_revoked_certificate_is_refused_by_name_and_by_serial(
        cluster: ProcessCluster) -> None:
    revoked = cluster.tls_dir / "revoked.txt"
    mallory = issued(cluster, "mallory", Role.TELLER)
    with bank(cluster, mallory) as client:
        client.open_account("acc-mallory", 1)
    try:
        revoked.write_text("# refused from now on\nmallory\n")

        def refused() -> bool:
            with bank(cluster, mallory, index=0, timeout_s=5) as client:
                try:
                    client.deposit("acc-mallory", 1)
                except Unauthenticated as error:
                    return "the certificate of mallory is revoked" in str(error)
                return False

        eventually(refused, what="n1 refuses mallory once the list names her")
        with bank(cluster, cluster.security) as local:
            balance = local.balance("acc-mallory").balance
        with bank(cluster, mallory) as client, pytest.raises(Unauthenticated):
            client.deposit("acc-mallory", 1)  # refused: nothing of hers is written
        with bank(cluster, cluster.security) as local:
            assert local.balance("acc-mallory").balance == balance
        # By serial, re-read at once on SIGHUP: one certificate, not every one of a name.
        out = cluster.base_dir / "issued"
        trent = certs.write_client(cluster.tls_dir, "trent", (Role.TELLER,), out)
        trent_client = Security(load_material(trent.ca_path, trent.certificate_path,
                                              trent.key_path))
        revoked.write_text(f"mallory\n{trent.serial_entry}\n")
        for node in cluster.nodes:
            assert node.process is not None
            os.kill(node.process.pid, signal.SIGHUP)

        def trent_refused() -> bool:
            with bank(cluster, trent_client, index=0, timeout_s=5) as client:
                try:
                    client.balance("acc-mallory")
                except Unauthenticated:
                    return True
                return False

        eventually(trent_refused, what="n1 refuses trent's serial")
    finally:
        revoked.unlink()


# ------------------------------------------------------------------ the health port


def test_health_answers_in_plaintext_on_its_own_port_and_nothing_else(
        tmp_path: pathlib.Path) -> None:
    from ledger.tools.localcluster import free_ports

    health_port = free_ports(1)[0]
    with ProcessCluster(tmp_path / "one", 1,
                        extra_args=["--health-listen", f"127.0.0.1:{health_port}"]) as one:
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        with grpc.insecure_channel(f"127.0.0.1:{health_port}") as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=5)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
            with pytest.raises(grpc.RpcError) as other:
                lpb_grpc.LedgerStub(channel).GetBalance(
                    lpb.GetBalanceRequest(account_id="x"), timeout=5)
            assert other.value.code() == grpc.StatusCode.UNIMPLEMENTED
        assert "PLAINTEXT" not in one.log_tail(0, lines=200)


def test_the_teller_takes_its_certificate_from_flags_and_history_shows_who(
        cluster: ProcessCluster) -> None:
    teller_files = issued(cluster, "tina", Role.TELLER).material
    auditor_files = issued(cluster, "audrey", Role.AUDITOR).material
    assert teller_files is not None and auditor_files is not None
    out = cluster.base_dir / "issued"
    bare = {name: "" for name in ("LEDGER_CA", "LEDGER_CERT", "LEDGER_KEY", "LEDGER_INSECURE")}

    def teller(name: str, *args: str) -> tuple[int, str]:
        flags = ["--ca", str(cluster.tls_dir / "ca.pem"), "--cert", str(out / f"{name}.pem"),
                 "--key", str(out / f"{name}-key.pem"), "--servers", servers_flag(cluster)]
        result = run([*TELLER, *flags, *args], env=bare)
        return result.returncode, result.stdout + result.stderr

    assert teller("tina", "open", "acc-tina", "--opening-balance", "5")[0] == 0
    assert teller("tina", "deposit", "acc-tina", "1.50")[0] == 0
    code, output = teller("audrey", "deposit", "acc-tina", "1")
    assert code == 1 and "not allowed" in output and "audrey (roles: auditor)" in output
    code, output = teller("audrey", "history", "acc-tina")
    assert code == 0
    rows = [line.split() for line in output.splitlines() if "tina" in line.split()]
    assert len(rows) == 2  # the opening and the deposit, each by tina


def test_a_revoked_member_is_cut_off_and_catches_up_once_lifted(
        cluster: ProcessCluster) -> None:
    """Once the list names n3, the other members refuse its calls, carry on as a
    majority, and n3 catches up once the revocation is lifted (that a stream opened
    before is refused at its next request: tests/security/test_stream_guard.py)."""
    with bank(cluster, cluster.security) as local:
        local.open_account("acc-cut", 1)
    eventually(lambda: converged(cluster), what="n3 in step before the revocation")
    refused_before = (node_counters(cluster.addresses[0], 5, cluster.security)
                      or {})["calls_unauthenticated"]
    revoked = cluster.tls_dir / "revoked.txt"
    try:
        revoked.write_text("n3\n")
        eventually(lambda: (node_counters(cluster.addresses[0], 5, cluster.security) or {})
                   ["calls_unauthenticated"] > refused_before,
                   what="n1 refuses n3's requests")
        with bank(cluster, cluster.security, index=0) as local:
            assert local.deposit("acc-cut", 2).balance == 3  # n1 and n2 are a majority
    finally:
        revoked.unlink()
    eventually(lambda: converged(cluster), what="n3 catches up once the revocation is lifted")
