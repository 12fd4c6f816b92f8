"""`ledger status`: every node, reachable or not, and every account side by side."""

from __future__ import annotations

import json
from typing import Any

import pytest

import ledger.cli.status as status_module
from ledger.client import BankAudit, LedgerClient
from ledger.tools.localcluster import ProcessCluster
from ledger.v1 import replica_pb2 as pb
from tests.support.cli import LEDGER, invoke_ledger, run
from tests.support.clusters import servers_flag
from tests.support.polling import eventually

pytestmark = pytest.mark.xdist_group("processes")


def open_accounts(cluster: ProcessCluster) -> ProcessCluster:
    with LedgerClient(cluster.addresses, security=cluster.security) as bank:
        bank.open_account("s-alice", 12_34)
        bank.deposit("s-alice", 100)
        bank.open_account("s-a-rather-long-account-name-for-the-table", 0)
    return cluster


@pytest.fixture(autouse=True)
def client_certificate(shared_cluster: ProcessCluster, monkeypatch: pytest.MonkeyPatch) -> None:
    """`ledger status` here presents the shared cluster's local certificate (an operator)."""
    for name, value in shared_cluster.client_env.items():
        monkeypatch.setenv(name, value)


@pytest.fixture(scope="module")
def accounts(shared_cluster: ProcessCluster) -> ProcessCluster:
    """Two accounts of these tests' own on the shared cluster (others may hold more)."""
    return open_accounts(shared_cluster)


def status_json(servers: str) -> Any:
    result = invoke_ledger(["status", "--servers", servers, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def all_agree(servers: str) -> Any:
    view = status_json(servers)
    return view if view["agree"] and all(view["agree"].values()) and all(
        len(per) == 3 for per in view["accounts"].values()) else None


def table_rows(text: str) -> dict[str, list[str]]:
    """account -> the words of its row in the table."""
    lines = text.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("account "))
    return {line.split()[0]: line.split() for line in lines[header + 1:] if line.strip()
            and not line.startswith(("1 ", "2 ", "3 "))}


def test_status_shows_each_node_and_every_account_agreeing(accounts: ProcessCluster) -> None:
    servers = servers_flag(accounts)
    view = eventually(lambda: all_agree(servers), what="replicas agree")
    assert [view["nodes"][a]["node_id"] for a in accounts.addresses] == ["n1", "n2", "n3"]
    known = len(view["accounts"])  # every account of the shared cluster, these two among them
    assert known >= 2
    assert all(node["reachable"] and node["accounts"] == known for node in view["nodes"].values())
    for address in accounts.addresses:
        cell = view["accounts"]["s-alice"][address]
        assert (cell["applied_position"], cell["chosen_through"], cell["balance"]) == (1, 1,
                                                                                       1334)

    result = invoke_ledger(["status", "--servers", servers])
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    for index, address in enumerate(accounts.addresses):
        assert lines[2 * index].split() == [address, "node", f"n{index + 1},", str(known),
                                            "accounts"]
        # Its audit: balances plus what is in flight, the two adding up to the total.
        words = lines[2 * index + 1].split()
        assert words[:2] == ["audit:", "balances"] and words[-2] == "=", words
    for node in view["nodes"].values():
        audit = node["audit"]
        assert audit["total"] == audit["balances"] + audit["in_flight"]
        assert audit["accounts"] == known
    rows = table_rows(result.stdout)
    header = next(line for line in lines if line.startswith("account "))
    assert header.split() == ["account", *accounts.addresses, "agree"]
    assert rows["s-alice"][:4] == ["s-alice", "pos", "1", "13.34"]
    assert rows["s-alice"].count("13.34") == 3 and rows["s-alice"][-1] == "yes"
    long_row = rows["s-a-rather-long-account-name-for-the-table"]
    assert long_row.count("0.00") == 3 and long_row[-1] == "yes"
    # Columns line up: every row of the table is as long as the header (ragged last column).
    table = lines[lines.index(header):]
    assert len({len(line.rsplit(maxsplit=1)[0]) for line in table}) == 1


def test_status_shows_a_killed_node_as_unreachable(own_cluster: ProcessCluster,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in own_cluster.client_env.items():
        monkeypatch.setenv(name, value)
    accounts = open_accounts(own_cluster)
    servers = servers_flag(accounts)
    eventually(lambda: all_agree(servers), what="replicas agree")
    accounts.kill(2)
    try:
        result = run([*LEDGER, "status"], env={"LEDGER_SERVERS": servers})
        assert result.returncode == 0, result.stderr
        lines = result.stdout.splitlines()
        down = accounts.addresses[2]
        assert next(line for line in lines if line.startswith(down)).split()[1] == "unreachable"
        assert "1 of 3 nodes did not answer" in result.stdout
        row = table_rows(result.stdout)["s-alice"]
        assert row[-2:] == ["down", "yes"]  # the two that answer agree
        view = json.loads(run([*LEDGER, "status", "--servers", servers, "--json"]).stdout)
        assert view["nodes"][down]["reachable"] is False
        assert down not in view["accounts"]["s-alice"]
        assert view["nodes"][accounts.addresses[0]]["reachable"] is True
    finally:
        accounts.start_node(2)
    eventually(lambda: all_agree(servers), what="the restarted node is back in agreement")


def test_status_with_nothing_listening_and_with_no_servers(nowhere: str) -> None:
    result = invoke_ledger(["status", "--servers", nowhere, "--timeout", "0.5"])
    assert result.exit_code == 0
    assert "unreachable" in result.stdout and "no accounts" in result.stdout
    assert invoke_ledger(["status", "--servers", " , "]).exit_code == 2


def fake_status(node_id: str, *accounts: tuple[str, int, int, bytes, int]) -> list[
        pb.StatusReply]:
    return [pb.StatusReply(node_id=node_id, complete=True, accounts=[
        pb.AccountStatus(account=name, applied_slot=applied, chosen_through=chosen,
                         digest=digest, opened=True, balance=balance)
        for name, applied, chosen, digest, balance in accounts])]


def test_status_says_no_when_replicas_differ(monkeypatch: pytest.MonkeyPatch) -> None:
    views: dict[str, list[pb.StatusReply] | str] = {
        "a:1": fake_status("n1", ("same", 3, 3, b"\x01" * 8, 500), ("lags", 4, 4, b"\x02" * 8, 9)),
        "b:2": fake_status("n2", ("same", 3, 3, b"\x01" * 8, 500), ("lags", 2, 2, b"\x03" * 8, 7),
                           ("only-here", 0, 0, b"\x04" * 8, 1)),
        "c:3": "unreachable (UNAVAILABLE)",
    }
    monkeypatch.setattr(status_module, "fetch_status",
                        lambda address, timeout, security: views[address])
    monkeypatch.setattr(status_module, "fetch_audit",
                        lambda address, timeout, security: "UNAVAILABLE: gone")
    result = invoke_ledger(["status", "--servers", "a:1,b:2,c:3"])
    assert "audit unavailable (UNAVAILABLE: gone)" in result.stdout
    rows = table_rows(result.stdout)
    assert rows["same"][-1] == "yes"
    assert rows["lags"][-1] == "NO"
    assert rows["only-here"][1] == "-" and rows["only-here"][-1] == "NO"
    assert rows["same"][-2] == "down"
    as_json = json.loads(invoke_ledger(["status", "--servers", "a:1,b:2,c:3", "--json"]).stdout)
    assert as_json["agree"] == {"same": True, "lags": False, "only-here": False}


def test_status_shows_what_a_node_refused_or_stopped_on(monkeypatch: pytest.MonkeyPatch) -> None:
    quiet = fake_status("n1", ("acct", 0, 0, b"\x01" * 8, 5))
    troubled = fake_status("n2", ("acct", 0, 0, b"\x01" * 8, 5))
    troubled[-1].counters["peer_messages_dropped"] = 3
    troubled[-1].counters["alarms"] = 1
    views = {"a:1": quiet, "b:2": troubled}
    monkeypatch.setattr(status_module, "fetch_status",
                        lambda address, timeout, security: views[address])
    monkeypatch.setattr(status_module, "fetch_audit", lambda address, timeout, security:
                        BankAudit("n1", 1, 10**20, 250, 1, 10**20 + 250))
    lines = invoke_ledger(["status", "--servers", "a:1,b:2"]).stdout.splitlines()
    assert lines[0] == "a:1  node n1, 1 accounts"
    assert lines[1] == ("     audit: balances 1000000000000000000.00 + in flight 2.50 "
                        "(1 transfers) = 1000000000000000002.50")
    assert lines[2] == ("b:2  node n2, 1 accounts; 3 malformed peer messages dropped, 1 "
                        "accounts quarantined on an ALARM (see the node's log)")
    as_json = json.loads(invoke_ledger(["status", "--servers", "a:1,b:2", "--json"]).stdout)
    assert as_json["nodes"]["b:2"]["peer_messages_dropped"] == 3
    assert as_json["nodes"]["b:2"]["alarms"] == 1


def test_status_watch_redraws_until_interrupted(accounts: ProcessCluster) -> None:
    """`--watch` reads the nodes again every interval (here as JSON, a document a line)
    until Ctrl-C, which ends it cleanly."""
    import os
    import signal
    import subprocess

    command = [*LEDGER, "status", "--servers", servers_flag(accounts), "--watch",
               "--interval", "0.2", "--json"]
    watching = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env={**os.environ, **accounts.client_env})
    try:
        assert watching.stdout is not None
        readings = [json.loads(watching.stdout.readline()) for _ in range(2)]
        assert all(set(r["nodes"]) == set(accounts.addresses) for r in readings)
        watching.send_signal(signal.SIGINT)
        _, errors = watching.communicate(timeout=30)
        assert watching.returncode == 0, errors
    finally:
        if watching.poll() is None:
            watching.kill()
