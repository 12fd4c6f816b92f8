"""`ledger serve --metrics-listen`: a real node's /metrics, scraped over HTTP while a small
workload runs, moves as the workload implies (each write counted once, each call timed
under its method); no series names an account."""

from __future__ import annotations

import json
import pathlib
import re
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from ledger.client import InsufficientFunds, LedgerClient
from ledger.server.metrics import COUNTERS, GAUGES
from ledger.tools.localcluster import ProcessCluster, free_ports
from tests.support.polling import eventually

pytestmark = pytest.mark.xdist_group("processes")


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
        text = reply.read().decode()
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def test_metrics_move_as_the_workload_implies(tmp_path: pathlib.Path) -> None:
    [port] = free_ports(1)
    with ProcessCluster(tmp_path / "cluster", 1,
                        extra_args=["--metrics-listen", f"127.0.0.1:{port}"]) as cluster:
        before = scrape(port)
        names = {name for name, _ in before}
        assert {name for name, _ in COUNTERS.values()} <= names
        assert {name for name, _ in GAUGES.values()} <= names
        # Unary calls (not the write stream): each is timed under its method.
        with LedgerClient(cluster.addresses, security=cluster.security,
                          stream_writes=False) as bank:
            bank.open_account("metered", 100)
            for _ in range(5):
                bank.deposit("metered", 1)
            with pytest.raises(InsufficientFunds):
                bank.withdraw("metered", 10_000)

        def moved() -> dict[tuple[str, tuple[tuple[str, str], ...]], float] | None:
            after = scrape(port)
            applied = after[("ledger_log_entries_applied_total", ())] - \
                before[("ledger_log_entries_applied_total", ())]
            return after if applied >= 7 else None  # the open, 5 deposits, the refusal

        after = eventually(moved, what="the applied entries show in /metrics")
        assert after[("ledger_paxos_proposals_total", ())] >= 7
        assert after[("ledger_storage_syncs_total", ())] > before[("ledger_storage_syncs_total",
                                                                     ())]
        assert after[("ledger_peer_messages_dropped_total", ())] == 0
        assert after[("ledger_accounts_unreadable", ())] == 0
        # Each write counted once, by kind and outcome.
        def writes(kind: str, outcome: str) -> float:
            return after.get(("ledger_writes_total", (("kind", kind), ("outcome", outcome))), 0)

        assert (writes("open", "applied"), writes("deposit", "applied"),
                writes("withdrawal", "refused"), writes("deposit", "duplicate")) == (1, 5, 1, 0)
        def calls(method: str) -> float:
            return after[("ledger_request_duration_seconds_count",
                          (("method", f"/ledger.v1.Ledger/{method}"),))]

        assert (calls("OpenAccount"), calls("Deposit"), calls("Withdraw")) == (1, 5, 1)
        # Nothing names an account (a million accounts must not make a million series).
        assert not any("metered" in str(labels) for _, labels in after)


DASHBOARD = pathlib.Path(__file__).resolve().parents[2] / "deploy" / "grafana" / \
    "ledger-dashboard.json"


def dashboard_metrics() -> set[str]:
    """The series names the dashboard's queries use."""
    queries = [target["expr"] for panel in json.loads(DASHBOARD.read_text())["panels"]
               for target in panel["targets"]]
    return {name for query in queries for name in re.findall(r"\bledger_\w+", query)}


def test_a_killed_peers_lag_rises_then_falls(tmp_path: pathlib.Path) -> None:
    """Three real nodes, the first serving metrics: while the third is killed its lag
    (as the account's leader sees it) rises with every write, and once it is back and
    has caught up, falls to nothing. The other series move with the same workload, and
    the Grafana dashboard charts only series such a node serves."""
    [port] = free_ports(1)

    def with_metrics(index: int, command: list[str]) -> list[str]:
        return [*command, "--metrics-listen", f"127.0.0.1:{port}"] if index == 0 else command

    def peer(name: str, node_id: str = "n3") -> tuple[str, tuple[tuple[str, str], ...]]:
        return (name, (("peer", node_id),))

    with ProcessCluster(tmp_path / "cluster", 3, wrap=with_metrics) as cluster:
        # Through the first node only (over the write stream): it leads the account.
        with LedgerClient(cluster.addresses[:1], security=cluster.security) as bank:
            bank.open_account("lagging", 0)
            bank.deposit("lagging", 1)
            cluster.kill(2)
            for _ in range(20):
                bank.deposit("lagging", 1)
            eventually(lambda: scrape(port)[peer("ledger_peer_lag_log_entries")] >= 20,
                       what="n3's lag counts the 20 writes it missed")
            assert scrape(port)[peer("ledger_peer_lag_log_entries", "n2")] < 20
            cluster.restart(2)

            def caught_up() -> bool:
                bank.deposit("lagging", 1)  # its votes on new slots report its prefix
                return scrape(port)[peer("ledger_peer_lag_log_entries")] == 0

            eventually(caught_up, what="n3's lag back to 0 once it has caught up")
        after = scrape(port)
    assert after[peer("ledger_peer_stream_up")] == 1
    assert after[peer("ledger_peer_streams_opened_total")] >= 2  # reopened after the kill
    assert after[peer("ledger_peer_silence_seconds")] < 60
    # The first write ran Phase 1 and won the account; the others took the fast path.
    assert after[("ledger_paxos_phase1_rounds_total", ())] >= 1
    assert after[("ledger_paxos_leaderships_won_total", ())] >= 1
    assert after[("ledger_paxos_fast_path_proposals_total", ())] >= 20
    # Every group commit timed and sized; every write stream batch timed.
    flushes = after[("ledger_storage_flush_seconds_count", ())]
    assert flushes >= 20 and after[("ledger_storage_flush_seconds_sum", ())] > 0
    assert after[("ledger_storage_flush_writes_count", ())] >= flushes - 1
    assert after[("ledger_request_duration_seconds_count",
                  (("method", "SubmitStream"),))] >= 22
    bounds = {labels[0][1] for name, labels in after if name == "ledger_memory_bound_used"}
    assert {"paxos_accounts_in_memory", "applied_accounts_cached", "recent_decisions",
            "account_workers", "client_calls"} <= bounds
    for bound in bounds:
        used = after[("ledger_memory_bound_used", (("bound", bound),))]
        assert 0 <= used <= after[("ledger_memory_bound_limit", (("bound", bound),))]
    # Every metric the Grafana dashboard charts is one a node of a cluster serves.
    served = {name for name, _ in after}
    assert dashboard_metrics() and dashboard_metrics() <= served, dashboard_metrics() - served
