"""Each nemesis alone, and all of them mixed, against 3 real nodes: the checker must pass.

The network nemeses (partition, loss) run each node in its own network namespace
with nftables dropping traffic; they need root and skip, saying why, without it.
"""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import pytest

from ledger.chaos.netns import unavailable_reason

pytestmark = pytest.mark.xdist_group("processes")

SECONDS = 12  # of faults per run; a long run is `python -m ledger.chaos --seconds 300`
NETWORK_REASON = unavailable_reason()


def chaos(tmp_path: pathlib.Path, nemesis: str, seed: int,
          seconds: int = SECONDS) -> dict:  # type: ignore[type-arg]
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-m", "ledger.chaos", "--nodes", "3", "--nemesis", nemesis,
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
    injected = set(report["faults"])
    wanted = {"kill", "pause", "partition", "loss"} if nemesis == "all" else {nemesis}
    assert wanted <= injected, f"faults injected: {report['faults']}"


@pytest.mark.parametrize("nemesis", ["kill", "pause"])
def test_process_faults(tmp_path: pathlib.Path, nemesis: str) -> None:
    assert_meaningful(chaos(tmp_path, nemesis, seed=1), nemesis)


@pytest.mark.skipif(NETWORK_REASON is not None, reason=f"network faults: {NETWORK_REASON}")
@pytest.mark.parametrize("nemesis", ["partition", "loss"])
def test_network_faults(tmp_path: pathlib.Path, nemesis: str) -> None:
    assert_meaningful(chaos(tmp_path, nemesis, seed=2), nemesis)


@pytest.mark.skipif(NETWORK_REASON is not None, reason=f"network faults: {NETWORK_REASON}")
def test_all_faults_mixed(tmp_path: pathlib.Path) -> None:
    assert_meaningful(chaos(tmp_path, "all", seed=3, seconds=20), "all")


def test_an_unknown_nemesis_is_refused() -> None:
    result = subprocess.run([sys.executable, "-m", "ledger.chaos", "--nemesis", "flood"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "unknown nemesis flood" in result.stderr
