"""Containers cannot run here, so check the deploy files agree with each other and with
`ledger serve`'s own argument parsing (via --check-config), with real certificates made
by the `ledger certs init` command each file documents."""

from __future__ import annotations

import ipaddress
import json
import pathlib
import shlex

import pytest
import yaml
from click.testing import CliRunner
from cryptography import x509

from ledger.cli.main import main
from ledger.cli.recover import recover
from ledger.node.cluster import ClusterConfig, parse_address
from ledger.security.certs import CA_PRIVATE_DIR
from ledger.security.tls import member_files
from ledger.server.node_server import LIVENESS_SERVICE

DEPLOY = pathlib.Path(__file__).resolve().parent.parent / "deploy"
COMPOSE = DEPLOY / "docker-compose.yml"
K8S = DEPLOY / "k8s" / "ledger.yaml"


def entrypoint_flags() -> list[str]:
    """The flags the image's ENTRYPOINT passes to `ledger serve`."""
    for line in (DEPLOY / "Dockerfile").read_text().splitlines():
        if line.startswith("ENTRYPOINT"):
            words = json.loads(line.removeprefix("ENTRYPOINT"))
            assert words[:2] == ["ledger", "serve"]
            return words[2:]
    raise AssertionError("the Dockerfile has no ENTRYPOINT")


def dockerfile_healthcheck() -> list[str]:
    for line in (DEPLOY / "Dockerfile").read_text().splitlines():
        if line.startswith("HEALTHCHECK"):
            return json.loads(line.split(" CMD ", 1)[1])
    raise AssertionError("the Dockerfile has no HEALTHCHECK")


def flag(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


def with_flag(args: list[str], name: str, value: str) -> list[str]:
    """`args` with the value of `name` replaced."""
    index = args.index(name) + 1
    return [*args[:index], value, *args[index + 1:]]


def invoke(args: list[str]) -> str:
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, f"ledger {shlex.join(args)}: {result.output}"
    return result.output


def check_config(args: list[str]) -> str:
    return invoke(["serve", *args, "--check-config"])


def check_security(args: list[str], tls_dir: pathlib.Path) -> str:
    """--check-config with the deploy file's --tls-dir replaced by real certificates."""
    assert "--insecure" not in args, "no plaintext in a deployment"
    assert "--tls-dir" in args, "every node serves mutual TLS"
    output = check_config(with_flag(args, "--tls-dir", str(tls_dir)))
    assert "mutual TLS" in output
    return output


def documented(path: pathlib.Path, command: str) -> list[str]:
    """The words of the command that starts with `command` in a header comment."""
    for line in path.read_text().splitlines():
        text = line.removeprefix("#").strip()
        if line.startswith("#") and text.startswith(command + " "):
            return shlex.split(text)
    raise AssertionError(f"{path.name} does not say how to run `{command}`")


def make_documented_certs(path: pathlib.Path, cluster: ClusterConfig,
                          out: pathlib.Path) -> list[str]:
    """Run the `ledger certs init` the file documents, into `out`; return its words."""
    words = documented(path, "ledger certs init")
    assert ClusterConfig.parse(flag(words, "--cluster")).canonical() == cluster.canonical(), (
        "the certificates must be made for the cluster the nodes are given")
    invoke(with_flag(words[1:], "--out", str(out)))
    return words


def certificate_hosts(path: pathlib.Path) -> set[str]:
    names = x509.load_pem_x509_certificate(path.read_bytes()).extensions.get_extension_for_class(
        x509.SubjectAlternativeName).value
    return {*names.get_values_for_type(x509.DNSName),
            *(str(ip) for ip in names.get_values_for_type(x509.IPAddress))}


def test_the_image_serves_from_its_data_volume_on_the_exposed_port() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    flags = entrypoint_flags()
    assert flag(flags, "--data-dir") == "/data" and "VOLUME /data" in text
    assert flag(flags, "--listen").endswith(":7001") and "EXPOSE 7001" in text
    assert "COPY ledger" in text and "pip install" in text
    # The node's own port is TLS-only: the image's check asks the plaintext health port.
    check = dockerfile_healthcheck()
    assert check[:2] == ["ledger", "health"] and "--insecure" in check
    assert not any(word in flags for word in ("--tls-dir", "--insecure", "--health-listen"))


def test_compose_nodes_agree_on_the_cluster_and_serve_accepts_their_flags(
        tmp_path: pathlib.Path) -> None:
    compose = yaml.safe_load(COMPOSE.read_text())
    services = compose["services"]
    assert len(services) == 3
    clusters = set()
    host_ports = []
    certs_dir: pathlib.Path | None = None
    for name, service in services.items():
        args = entrypoint_flags() + service["command"]
        assert "--tls-dir" in args and "--insecure" not in args, "mutual TLS, never plaintext"
        assert flag(args, "--node-id") == name
        cluster = ClusterConfig.parse(flag(args, "--cluster"))
        clusters.add(cluster.canonical())
        member = cluster.members[cluster.index_of(name)]
        assert member.host == name, "peers reach a node by its service name"
        listen_port = int(flag(args, "--listen").rsplit(":", 1)[1])
        assert member.port == listen_port
        (mapping,) = service["ports"]  # the health port is not published
        host_ip, host_port, container_port = mapping.split(":")
        assert host_ip == "127.0.0.1", "publish on the host's loopback only"
        assert int(container_port) == listen_port
        host_ports.append(int(host_port))
        data, *tls_mounts = service["volumes"]
        assert data == f"{name}-data:/data" and f"{name}-data" in compose["volumes"]

        if certs_dir is None:
            certs_dir = tmp_path / "tls"
            words = make_documented_certs(COMPOSE, cluster, certs_dir)
            # ./tls in the compose file is deploy/tls, from the repository root.
            assert flag(words, "--out") == "deploy/tls"
            # teller dials 127.0.0.1 by default: the certificates must be valid there.
            assert "127.0.0.1" in certificate_hosts(certs_dir / f"{name}.pem")
        # Each node gets exactly its three files, read-only, and never the CA key.
        tls_dir = pathlib.PurePosixPath(flag(args, "--tls-dir"))
        needed = {path.name for path in member_files(certs_dir, name)}
        assert {pathlib.PurePosixPath(m["source"]).name for m in tls_mounts} == needed
        for mount in tls_mounts:
            assert mount["type"] == "bind" and mount["read_only"] is True
            source = pathlib.PurePosixPath(mount["source"])
            assert source.parent == pathlib.PurePosixPath("tls")
            assert CA_PRIVATE_DIR not in mount["source"]
            assert (certs_dir / source.name).is_file()
            assert pathlib.PurePosixPath(mount["target"]) == tls_dir / source.name

        health = flag(args, "--health-listen")
        assert parse_address(health)[0] == "127.0.0.1", "the plaintext port stays inside"
        assert service["healthcheck"]["test"] == ["CMD", *dockerfile_healthcheck()]
        assert flag(service["healthcheck"]["test"], "--server") == health
        assert f"node {name}" in check_security(args, certs_dir)
    assert len(clusters) == 1, "every node must be given the same cluster"
    assert host_ports == [7001, 7002, 7003]  # where teller looks by default


def test_compose_documents_a_client_certificate_that_works(tmp_path: pathlib.Path) -> None:
    cluster = ClusterConfig.parse(flag(yaml.safe_load(COMPOSE.read_text())["services"]["n1"]
                                       ["command"], "--cluster"))
    make_documented_certs(COMPOSE, cluster, tmp_path / "tls")
    words = documented(COMPOSE, "ledger certs issue")
    invoke([word.replace("deploy/tls", str(tmp_path / "tls")) for word in words[1:]])
    text = COMPOSE.read_text()
    for variable in ("LEDGER_CA", "LEDGER_CERT", "LEDGER_KEY"):
        (line,) = [line for line in text.splitlines() if f"export {variable}=" in line]
        path = shlex.split(line.split("=", 1)[1])[0].replace("$PWD/deploy/tls",
                                                             str(tmp_path / "tls"))
        assert pathlib.Path(path).is_file(), line


def k8s_documents() -> dict[str, dict]:  # type: ignore[type-arg]
    docs = list(yaml.safe_load_all(K8S.read_text()))
    return {f"{d['kind']}/{d['metadata']['name']}": d for d in docs}


def test_the_statefulset_nodes_agree_with_the_headless_service(tmp_path: pathlib.Path) -> None:
    docs = k8s_documents()
    sts = docs["StatefulSet/ledger"]
    service = docs[f"Service/{sts['spec']['serviceName']}"]
    assert service["spec"]["clusterIP"] == "None"
    assert service["spec"]["publishNotReadyAddresses"] is True
    (port,) = service["spec"]["ports"]
    pod = sts["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    container_port, health_port = ports["grpc"], ports["health"]
    assert port["targetPort"] == container_port
    for svc in (service, docs["Service/ledger-client"]):  # the probes' port stays unexposed
        assert [p["targetPort"] for p in svc["spec"]["ports"]] == [container_port]
    readiness, liveness = container["readinessProbe"]["grpc"], container["livenessProbe"]["grpc"]
    assert readiness["port"] == liveness["port"] == health_port
    assert readiness.get("service", "") == ""  # SERVING once the node takes part in Paxos
    assert liveness["service"] == LIVENESS_SERVICE
    (claim,) = sts["spec"]["volumeClaimTemplates"]
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    mount = mounts[claim["metadata"]["name"]]
    assert mount["mountPath"] == flag(entrypoint_flags(), "--data-dir")
    env = {e["name"]: e for e in container["env"]}
    assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"

    # TLS from the Secret, read-only, where --tls-dir says; the keys not world-readable.
    volumes = {v["name"]: v for v in pod["volumes"]}
    (tls_mount,) = [m for m in container["volumeMounts"] if m is not mount]
    secret = volumes[tls_mount["name"]]["secret"]
    assert tls_mount["readOnly"] is True
    assert tls_mount["mountPath"] == flag(container["args"], "--tls-dir")
    assert secret.get("defaultMode", 0o644) & 0o007 == 0
    replicas = sts["spec"]["replicas"]
    name = sts["metadata"]["name"]
    cluster = ClusterConfig.parse(flag(container["args"], "--cluster"))
    certs_dir = tmp_path / "tls"
    words = make_documented_certs(K8S, cluster, certs_dir)
    secret_words = documented(K8S, "kubectl create secret generic")
    assert secret_words[4] == secret["secretName"]
    assert secret_words[5] == f"--from-file={flag(words, '--out')}"
    # Clients in the cluster dial the client Service: the certificates must be valid there.
    assert "ledger-client" in certificate_hosts(certs_dir / f"{name}-0.pem")

    health = flag(container["args"], "--health-listen")
    assert parse_address(health) == ("0.0.0.0", health_port), "the kubelet probes the pod IP"
    # Prometheus scrapes the pod's IP where the annotations say, and nothing exposes it.
    metrics = flag(container["args"], "--metrics-listen")
    annotations = sts["spec"]["template"]["metadata"]["annotations"]
    assert parse_address(metrics) == ("0.0.0.0", ports["metrics"])
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == str(ports["metrics"])
    assert annotations["prometheus.io/path"] == "/metrics"
    for ordinal in range(replicas):
        pod_name = f"{name}-{ordinal}"
        args = entrypoint_flags() + [a.replace("$(POD_NAME)", pod_name) for a in container["args"]]
        cluster = ClusterConfig.parse(flag(args, "--cluster"))
        assert cluster.node_ids == tuple(f"{name}-{i}" for i in range(replicas))
        member = cluster.members[cluster.index_of(pod_name)]
        assert member.host == f"{pod_name}.{service['metadata']['name']}"
        assert member.port == container_port
        assert f"node {pod_name}" in check_security(args, certs_dir)
    # The init container recovers a lost or rolled-back volume with the same identity and
    # certificate: the server's arguments but its listeners.
    (init,) = pod["initContainers"]
    assert init["command"][:3] == ["ledger", "recover", "--if-needed"]
    assert flag(init["command"], "--data-dir") == mount["mountPath"]
    server_args = list(container["args"])
    for listener in ("--health-listen", "--metrics-listen"):
        index = server_args.index(listener)
        del server_args[index:index + 2]
    assert init["args"] == server_args
    assert init["volumeMounts"] == container["volumeMounts"]
    init_words = [*init["command"][2:], *init["args"]]
    assert "--insecure" not in init_words
    params = recover.make_context("recover", init_words).params  # recover accepts them
    assert str(params["tls_dir"]) == tls_mount["mountPath"]


def test_the_probe_and_health_ports_answer_the_images_healthcheck() -> None:
    """Both deployments open the port the image's own HEALTHCHECK asks."""
    asked = parse_address(flag(dockerfile_healthcheck(), "--server"))
    (container,) = k8s_documents()["StatefulSet/ledger"]["spec"]["template"]["spec"][
        "containers"]
    k8s_health = parse_address(flag(container["args"], "--health-listen"))
    assert k8s_health[1] == asked[1] and ipaddress.ip_address(k8s_health[0]).is_unspecified
    for service in yaml.safe_load(COMPOSE.read_text())["services"].values():
        assert parse_address(flag(service["command"], "--health-listen")) == asked


@pytest.mark.parametrize("document", ["docker-compose.yml", "k8s/ledger.yaml"])
def test_deploy_files_parse(document: str) -> None:
    assert list(yaml.safe_load_all((DEPLOY / document).read_text()))


def test_readme_mentions_how_to_use_the_deploy_files() -> None:
    readme = (DEPLOY.parent / "README.md").read_text()
    for command in ("docker compose -f deploy/docker-compose.yml", "kubectl apply -f deploy/k8s"):
        assert command in readme, shlex.quote(command)
