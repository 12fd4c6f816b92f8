"""Server reflection through a real channel, as grpcurl uses it: any certificate of the
cluster lists the services and describes their methods without the .proto files; a
caller without one is refused."""

from __future__ import annotations

import grpc
import pytest
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from ledger.tools.localcluster import ProcessCluster

pytestmark = pytest.mark.xdist_group("processes")


def test_reflection_lists_and_describes_the_services(shared_cluster: ProcessCluster) -> None:
    with shared_cluster.security.channel(shared_cluster.addresses[0]) as channel:
        database = ProtoReflectionDescriptorDatabase(channel)
        services = set(database.get_services())
        assert {"ledger.v1.Ledger", "ledger.v1.Admin", "ledger.v1.Replica",
                "grpc.health.v1.Health"} <= services
        described = database.FindFileContainingSymbol("ledger.v1.Ledger")
        [ledger] = [s for s in described.service if s.name == "Ledger"]
        methods = {method.name for method in ledger.method}
        assert {"Transfer", "Audit", "Deposit", "SubmitStream"} <= methods


def test_reflection_refuses_a_caller_without_a_certificate(
    shared_cluster: ProcessCluster,
) -> None:
    ca = (shared_cluster.tls_dir / "ca.pem").read_bytes()
    credentials = grpc.ssl_channel_credentials(root_certificates=ca)  # presents none
    with (grpc.secure_channel(shared_cluster.addresses[0], credentials) as channel,
          pytest.raises(grpc.RpcError) as refused):
        list(ProtoReflectionDescriptorDatabase(channel).get_services())
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE, refused.value
