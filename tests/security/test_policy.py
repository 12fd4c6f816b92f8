"""The authorisation table: every RPC a node serves has a row, the README's table is the
same table, and the refusals say who lacked what."""

from __future__ import annotations

import pathlib
import re

from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection_pb2

from ledger.security import policy
from ledger.security.principal import ANONYMOUS, Principal, Role
from ledger.v1 import ledger_pb2, replica_pb2

README = pathlib.Path(__file__).resolve().parents[2] / "README.md"
ROW = re.compile(r"^\| `(?P<method>[\w.]+/\w+)` \| (?P<roles>[^|]+) \|")


def served_methods() -> set[str]:
    services = [ledger_pb2.DESCRIPTOR.services_by_name["Ledger"],
                replica_pb2.DESCRIPTOR.services_by_name["Replica"],
                replica_pb2.DESCRIPTOR.services_by_name["Admin"],
                health_pb2.DESCRIPTOR.services_by_name["Health"],
                reflection_pb2.DESCRIPTOR.services_by_name["ServerReflection"]]
    return {f"/{service.full_name}/{method.name}"
            for service in services for method in service.methods}


def test_every_rpc_a_node_serves_has_a_row_and_no_row_is_stale() -> None:
    assert set(policy.METHOD_ROLES) == served_methods()


def readme_table() -> dict[str, frozenset[Role]]:
    rows = {}
    for line in README.read_text().splitlines():
        match = ROW.match(line)
        if match:
            words = match["roles"].replace(",", " ").split()
            roles = (frozenset(Role) if words == ["any", "certificate"]
                     else frozenset(Role(word) for word in words))
            rows[f"/{match['method']}"] = roles
    return rows


def test_the_readme_table_is_the_table_the_node_enforces() -> None:
    assert readme_table() == policy.METHOD_ROLES


def test_refusals_name_the_caller_its_roles_and_what_was_needed() -> None:
    auditor = Principal("audrey", frozenset({Role.AUDITOR}), 1)
    assert policy.refusal("/ledger.v1.Ledger/GetBalance", auditor) is None
    assert policy.refusal("/ledger.v1.Ledger/Deposit", auditor) == (
        "audrey (roles: auditor) may not call /ledger.v1.Ledger/Deposit: it needs teller")
    assert "not in the authorisation table" in (
        policy.refusal("/ledger.v1.Ledger/CloseAccount", ANONYMOUS) or "")
    for method in policy.METHOD_ROLES:  # --insecure: every role, every call
        assert policy.refusal(method, ANONYMOUS) is None
    member = Principal("n1", frozenset({Role.MEMBER}), 2)
    assert policy.refusal("/ledger.v1.Ledger/Deposit", member) is not None  # only via Submit
    assert policy.refusal("/ledger.v1.Ledger/Submit", member) is None
