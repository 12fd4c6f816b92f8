"""`ledger bench` end to end, small: every figure it reports is produced, from real work.

No timing is asserted (speed is for the benchmark to report); the test holds the
benchmark to doing what it says: writes acknowledged without errors, by the TLS
cluster and by the plaintext one it is compared with, sent to every node at random
under any-node, the floor server answering the same load, a restarted node serving, a
lagging node holding every entry it missed.
"""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

from ledger.bench.load import server_addresses
from ledger.bench.runner import (
    SCENARIOS,
    System,
    round_order,
    table,
    tls_ratios,
    variant_ratios,
)
from ledger.tools.localcluster import ProcessCluster


def test_the_benchmark_measures_every_figure_from_real_work() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ledger", "bench", "--seconds", "1", "--rounds", "1",
         "--scenarios", "single,any-node,batch,client,client-unary,transfer", "--floor",
         "--vs-insecure",
         "--restart-entries", "3000", "--catch-up-entries", "2000", "--json"],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout)
    load, recovery = report["load"], report["recovery"]
    assert set(load) == {"single", "any-node", "batch", "client", "client-unary", "transfer"}
    for name in ("single", "any-node", "batch", "client", "client-unary", "transfer"):
        ledger = load[name]["ledger"]
        assert ledger["operations"] > 0 and ledger["errors"] == 0, ledger
        assert ledger["p50_ms"] > 0 and ledger["cpu_s_per_1000"] > 0
        floor = load[name]["floor"]
        assert floor["operations"] > 0 and floor["errors"] == 0, floor
        plain = load[name]["insecure"]
        assert plain["operations"] > 0 and plain["errors"] == 0, plain
        assert set(report["tls_over_insecure"][name]) == {
            "throughput", "p50_ms", "p99_ms", "cpu_s_per_1000"}
    # any-node sends to all three nodes of each ledger cluster; everything else to the
    # first (the floor has only one).
    assert load["any-node"]["ledger"]["nodes_used"] == 3
    assert load["any-node"]["insecure"]["nodes_used"] == 3
    assert load["any-node"]["floor"]["nodes_used"] == 1
    assert load["single"]["ledger"]["nodes_used"] == 1
    assert "etcd" not in load["single"]  # only with --vs-etcd
    assert recovery["big_entries"] == 3000 and recovery["small_entries"] == 1000
    assert recovery["big_restart_s"] > 0 and recovery["big_rss_mib"] > 0
    assert recovery["catch_up_entries"] == 2000 and recovery["catch_up_entries_per_s"] > 0


def summary(throughput: float, p50_ms: float) -> dict[str, float]:
    return {"throughput": throughput, "p50_ms": p50_ms, "p99_ms": 2 * p50_ms,
            "p999_ms": 3 * p50_ms, "cpu_s_per_1000": p50_ms / 2, "operations": 1.0}


def test_the_tls_comparison_reports_each_figure_and_tls_over_insecure() -> None:
    report = {"single": {"ledger": summary(90, 11), "insecure": summary(100, 10)}}
    assert tls_ratios(report) == {"single": {"throughput": 0.9, "p50_ms": 1.1,
                                             "p99_ms": 1.1, "cpu_s_per_1000": 1.1}}
    lines = table(report).splitlines()
    start = lines.index("TLS against plaintext: the same load on a cluster started --insecure")
    assert lines[start + 1].split() == ["figure", "TLS", "insecure", "ratio"]
    assert lines[start + 2].split() == ["1", "in", "flight:", "writes/s", "90.00", "100.00",
                                        "0.90x"]
    assert lines[start + 3].split()[-3:] == ["11.00", "10.00", "1.10x"]
    assert lines[-1].startswith("ratio: TLS / insecure")
    assert "TLS against plaintext" not in table({"single": {"ledger": summary(90, 11)}})


def test_the_watched_comparison_reports_what_metrics_and_tracing_cost() -> None:
    report = {"spread": {"ledger": summary(100, 10), "metrics": summary(95, 10.5)}}
    assert variant_ratios(report, "metrics") == {"spread": {
        "throughput": 0.95, "p50_ms": 1.05, "p99_ms": 1.05, "cpu_s_per_1000": 1.05}}
    lines = table(report).splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Watched against not"))
    assert lines[start + 1].split() == ["figure", "plain", "watched", "ratio"]
    assert lines[start + 2].split()[-3:] == ["100.00", "95.00", "0.95x"]
    assert lines[-1].startswith("ratio: watched / plain")


def test_each_variant_and_the_tls_cluster_swap_places_every_other_round() -> None:
    systems = [System(name, "ledger", ("a:1",), (), ()) for name in ("ledger", "metrics")]
    assert [s.name for s in round_order(systems, 1)] == ["metrics", "ledger"]


def test_the_tls_and_the_plaintext_cluster_swap_places_every_other_round() -> None:
    systems = [System(name, "ledger", ("a:1",), (), ()) for name in ("ledger", "insecure",
                                                                   "floor")]
    assert [s.name for s in round_order(systems, 0)] == ["ledger", "insecure", "floor"]
    assert [s.name for s in round_order(systems, 1)] == ["insecure", "ledger", "floor"]
    assert [s.name for s in round_order(systems[::2], 1)] == ["ledger", "floor"]


def test_the_load_generator_dials_the_ledger_with_its_certificate_unless_insecure(
    tmp_path: pathlib.Path,
) -> None:
    certs = ProcessCluster(tmp_path / "tls", 3).certs
    assert certs is not None
    assert ProcessCluster(tmp_path / "tls", 3).client_flags() == [
        "--ca", str(certs.ca_path), "--cert", str(certs.certificate_path),
        "--key", str(certs.key_path)]
    assert ProcessCluster(tmp_path / "plain", 3, tls=False).client_flags() == ["--insecure"]


def test_the_load_generator_takes_servers_repeated_or_comma_separated() -> None:
    assert server_addresses(["h:1"]) == ["h:1"]
    assert server_addresses(["h:1, h:2", "h:3", ","]) == ["h:1", "h:2", "h:3"]


def test_any_node_is_a_default_scenario_with_its_own_name_in_the_table() -> None:
    assert list(SCENARIOS) == ["single", "spread", "any-node", "hot", "batch", "client",
                               "client-unary", "transfer"]
    assert (SCENARIOS["transfer"].mode, SCENARIOS["transfer"].etcd) == ("transfer", False)
    assert (SCENARIOS["client"].mode, SCENARIOS["client"].etcd) == ("client", False)
    assert (SCENARIOS["client-unary"].mode, SCENARIOS["client-unary"].etcd) == (
        "client-unary", False)
    assert SCENARIOS["any-node"].name == "64 in flight, 1,000 accounts, any node"
    assert (SCENARIOS["any-node"].mode, SCENARIOS["any-node"].in_flight) == ("any-node", 64)
    report = {"any-node": {"ledger": summary(90, 11), "etcd": summary(45, 22)}}
    first = table(report).splitlines()[1]
    assert first.split() == ["64", "in", "flight,", "1,000", "accounts,", "any", "node:",
                             "writes/s", "90.00", "45.00", "2.00x"]
