"""Each nemesis alone against 3 real nodes, all of them mixed on 3 and on 5 (the disk
nemesis alone on 3 and on 5), with the bank workload of transfers and audits beside
the deposits: the checker must pass.

The network nemeses (partition, loss) run each node in its own network namespace
with nftables dropping traffic; they need root and skip, saying why, without it.
The disk nemesis wipes or rolls back a node's data directory: `ledger serve` must
refuse it, and `ledger recover` brings it back.
"""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys
import threading
import time

import pytest

from ledger.chaos.disk import Disks
from ledger.chaos.history import FaultEvent
from ledger.chaos.netns import unavailable_reason
from ledger.tools.localcluster import ProcessCluster

pytestmark = pytest.mark.xdist_group("processes")

SECONDS = 12  # of faults per run; a long run is `python -m ledger.chaos --seconds 300`
NETWORK_REASON = unavailable_reason()


def chaos(tmp_path: pathlib.Path, nemesis: str, seed: int, seconds: int = SECONDS,
          nodes: int = 3) -> dict:  # type: ignore[type-arg]
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-m", "ledger.chaos", "--nodes", str(nodes), "--nemesis", nemesis,
         "--seconds", str(seconds), "--seed", str(seed), "--out", str(out)],
        capture_output=True, text=True, timeout=600,
    )
    report_path = out / "report.json"
    assert report_path.exists(), result.stdout + result.stderr
    report = json.loads(report_path.read_text())
    assert result.returncode == 0, (out / "report.txt").read_text() + result.stderr[-3000:]
    return report


def assert_meaningful(report: dict, nemesis: str) -> None:  # type: ignore[type-arg]
    assert report["passed"] and report["converged"] and not report["violations"]
    assert report["acknowledged_writes"] > 50, "the workload barely ran"
    assert report["outcomes"]["refused"] > 0, "no overdraft was attempted"
    assert report["outcomes"]["failed"] > 0, "no invalid request was made"
    assert report["acknowledged_transfers"] > 10, "the bank workload barely ran"
    assert report["refused_transfers"] > 0, "no transfer without funds was attempted"
    assert report["audits"] > 5, "no consistent cut was read during the run"
    injected = set(report["faults"])
    wanted = {"kill", "pause", "partition", "loss", "disk"} if nemesis == "all" else {nemesis}
    if "disk" in wanted:  # every harmed directory was refused, then recovered
        wanted |= {"refused", "recover"}
        assert report["faults"]["disk"] == report["faults"]["refused"] == \
            report["faults"]["recover"], report["faults"]
    assert wanted <= injected, f"faults injected: {report['faults']}"


@pytest.mark.parametrize("nemesis", ["kill", "pause"])
def test_process_faults(tmp_path: pathlib.Path, nemesis: str) -> None:
    assert_meaningful(chaos(tmp_path, nemesis, seed=1), nemesis)


@pytest.mark.skipif(NETWORK_REASON is not None, reason=f"network faults: {NETWORK_REASON}")
@pytest.mark.parametrize("nemesis", ["partition", "loss"])
def test_network_faults(tmp_path: pathlib.Path, nemesis: str) -> None:
    assert_meaningful(chaos(tmp_path, nemesis, seed=2), nemesis)


@pytest.mark.skipif(NETWORK_REASON is not None, reason=f"network faults: {NETWORK_REASON}")
@pytest.mark.parametrize("nodes", [3, 5])
def test_all_faults_mixed(tmp_path: pathlib.Path, nodes: int) -> None:
    report = chaos(tmp_path, "all", seed=3, seconds=25, nodes=nodes)
    assert report["config"]["nodes"] == nodes
    assert_meaningful(report, "all")


def faults(tmp_path: pathlib.Path) -> list[FaultEvent]:
    lines = (tmp_path / "out" / "faults.jsonl").read_text().splitlines()
    return [FaultEvent(**json.loads(line)) for line in lines if line]


# Seeds whose first two injections are a rollback to a copy made while the node was
# stopped and a wipe (then a rollback to a `ledger backup`; on 5 nodes, a rollback to a
# copy from before the node's first recovery).
@pytest.mark.parametrize(("nodes", "seed"), [(3, 7), (5, 9)])
def test_disk_faults(tmp_path: pathlib.Path, nodes: int, seed: int) -> None:
    """A minority node's data directory is wiped or rolled back, again and again, while
    the workload runs: `ledger serve` refuses it every time, `ledger recover` brings it
    back, and no acknowledged write is lost."""
    report = chaos(tmp_path, "disk", seed=seed, seconds=20, nodes=nodes)
    assert report["config"]["nodes"] == nodes
    assert_meaningful(report, "disk")
    events = faults(tmp_path)
    harms = [e.detail for e in events if e.kind == "disk"]
    assert any("wiped" in h for h in harms), harms
    assert any("rolled back to a stopped copy" in h for h in harms), harms
    for harm in (e for e in events if e.kind == "disk"):
        node = harm.detail.split(":")[0]
        after = [e for e in events if e.at_ms > harm.at_ms and e.detail.startswith(node)]
        assert [e.kind for e in after[:3]] == ["refused", "recover", "restart"], after[:3]
        assert "ledger recover" in after[0].detail


def test_the_disk_nemesis_fails_the_run_when_serve_takes_a_harmed_directory(
    tmp_path: pathlib.Path,
) -> None:
    """The refusal check is no formality: a directory `ledger serve` takes is a failure
    (here the "harm" is only a kill, so serve rightly takes it)."""
    events: list[tuple[str, str]] = []
    failures: list[tuple[str, str]] = []
    started = time.monotonic()
    with ProcessCluster(tmp_path / "nodes", 3) as cluster:
        disks = Disks(cluster, tmp_path / "copies", lambda kind, detail: events.append(
            (kind, detail)), lambda node, detail: failures.append((node, detail)),
            lambda: (time.monotonic() - started) * 1000, threading.Event())
        cluster.kill(1)
        disks.check_refused(1)
    assert [kind for kind, _ in events] == ["not-refused"]
    [(node, detail)] = failures
    assert node == "n2" and "did not refuse" in detail and "SERVING" in detail, detail


def test_an_unknown_nemesis_is_refused() -> None:
    result = subprocess.run([sys.executable, "-m", "ledger.chaos", "--nemesis", "flood"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "unknown nemesis flood" in result.stderr
