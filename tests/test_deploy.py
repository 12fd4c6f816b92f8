"""Containers cannot run here, so check the deploy files agree with each other and with
`ledger serve`'s own argument parsing (via --check-config)."""

from __future__ import annotations

import json
import pathlib
import shlex

import pytest
import yaml
from click.testing import CliRunner

from ledger.cli.main import main
from ledger.node.cluster import ClusterConfig
from ledger.server.node_server import LIVENESS_SERVICE

DEPLOY = pathlib.Path(__file__).resolve().parent.parent / "deploy"


def entrypoint_flags() -> list[str]:
    """The flags the image's ENTRYPOINT passes to `ledger serve`."""
    for line in (DEPLOY / "Dockerfile").read_text().splitlines():
        if line.startswith("ENTRYPOINT"):
            words = json.loads(line.removeprefix("ENTRYPOINT"))
            assert words[:2] == ["ledger", "serve"]
            return words[2:]
    raise AssertionError("the Dockerfile has no ENTRYPOINT")


def flag(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


def check_config(args: list[str]) -> str:
    result = CliRunner().invoke(main, ["serve", *args, "--check-config"])
    assert result.exit_code == 0, result.output
    return result.output


def test_the_image_serves_from_its_data_volume_on_the_exposed_port() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    flags = entrypoint_flags()
    assert flag(flags, "--data-dir") == "/data" and "VOLUME /data" in text
    assert flag(flags, "--listen").endswith(":7001") and "EXPOSE 7001" in text
    assert "COPY ledger" in text and "pip install" in text


def test_compose_nodes_agree_on_the_cluster_and_serve_accepts_their_flags() -> None:
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    services = compose["services"]
    assert len(services) == 3
    clusters = set()
    host_ports = []
    for name, service in services.items():
        args = entrypoint_flags() + service["command"]
        assert flag(args, "--node-id") == name
        cluster = ClusterConfig.parse(flag(args, "--cluster"))
        clusters.add(cluster.canonical())
        member = cluster.members[cluster.index_of(name)]
        assert member.host == name, "peers reach a node by its service name"
        listen_port = int(flag(args, "--listen").rsplit(":", 1)[1])
        assert member.port == listen_port
        (mapping,) = service["ports"]
        host_port, container_port = map(int, mapping.split(":"))
        assert container_port == listen_port
        host_ports.append(host_port)
        (volume,) = service["volumes"]
        assert volume == f"{name}-data:/data" and f"{name}-data" in compose["volumes"]
        assert f"node {name}" in check_config(args)
    assert len(clusters) == 1, "every node must be given the same cluster"
    assert host_ports == [7001, 7002, 7003]  # where teller looks by default


def k8s_documents() -> dict[str, dict]:  # type: ignore[type-arg]
    docs = list(yaml.safe_load_all((DEPLOY / "k8s" / "ledger.yaml").read_text()))
    return {f"{d['kind']}/{d['metadata']['name']}": d for d in docs}


def test_the_statefulset_nodes_agree_with_the_headless_service() -> None:
    docs = k8s_documents()
    sts = docs["StatefulSet/ledger"]
    service = docs[f"Service/{sts['spec']['serviceName']}"]
    assert service["spec"]["clusterIP"] == "None"
    assert service["spec"]["publishNotReadyAddresses"] is True
    (port,) = service["spec"]["ports"]
    pod = sts["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    container_port = container["ports"][0]["containerPort"]
    assert port["targetPort"] == container_port
    assert container["readinessProbe"]["grpc"]["port"] == container_port
    (claim,) = sts["spec"]["volumeClaimTemplates"]
    (mount,) = container["volumeMounts"]
    assert mount["name"] == claim["metadata"]["name"]
    assert mount["mountPath"] == flag(entrypoint_flags(), "--data-dir")
    env = {e["name"]: e for e in container["env"]}
    assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    replicas = sts["spec"]["replicas"]
    name = sts["metadata"]["name"]
    for ordinal in range(replicas):
        pod_name = f"{name}-{ordinal}"
        args = entrypoint_flags() + [a.replace("$(POD_NAME)", pod_name) for a in container["args"]]
        cluster = ClusterConfig.parse(flag(args, "--cluster"))
        assert cluster.node_ids == tuple(f"{name}-{i}" for i in range(replicas))
        member = cluster.members[cluster.index_of(pod_name)]
        assert member.host == f"{pod_name}.{service['metadata']['name']}"
        assert member.port == container_port
        assert f"node {pod_name}" in check_config(args)
    # The init container recovers a lost or rolled-back volume with the same identity.
    (init,) = pod["initContainers"]
    assert init["command"][:3] == ["ledger", "recover", "--if-needed"]
    assert flag(init["command"], "--data-dir") == mount["mountPath"]
    assert init["args"] == container["args"]
    assert init["volumeMounts"] == container["volumeMounts"]
    assert container["livenessProbe"]["grpc"]["service"] == LIVENESS_SERVICE


@pytest.mark.parametrize("document", ["docker-compose.yml", "k8s/ledger.yaml"])
def test_deploy_files_parse(document: str) -> None:
    assert list(yaml.safe_load_all((DEPLOY / document).read_text()))


def test_readme_mentions_how_to_use_the_deploy_files() -> None:
    readme = (DEPLOY.parent / "README.md").read_text()
    for command in ("docker compose -f deploy/docker-compose.yml", "kubectl apply -f deploy/k8s"):
        assert command in readme, shlex.quote(command)
