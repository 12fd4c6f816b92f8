"""`ledger bench` end to end, small: every figure it reports is produced, from real work.

No timing is asserted (speed is for the benchmark to report); the test holds the
benchmark to doing what it says: writes acknowledged without errors, the floor
server answering the same load, a restarted node serving, a lagging node holding
every entry it missed.
"""

from __future__ import annotations

import json
import subprocess
import sys


def test_the_benchmark_measures_every_figure_from_real_work() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ledger", "bench", "--seconds", "1", "--rounds", "1",
         "--scenarios", "single,batch", "--floor", "--restart-entries", "3000",
         "--catch-up-entries", "2000", "--json"],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout)
    load, recovery = report["load"], report["recovery"]
    assert set(load) == {"single", "batch"}
    for name in ("single", "batch"):
        ledger = load[name]["ledger"]
        assert ledger["operations"] > 0 and ledger["errors"] == 0, ledger
        assert ledger["p50_ms"] > 0 and ledger["cpu_s_per_1000"] > 0
        floor = load[name]["floor"]
        assert floor["operations"] > 0 and floor["errors"] == 0, floor
    assert "etcd" not in load["single"]  # only with --vs-etcd
    assert recovery["big_entries"] == 3000 and recovery["small_entries"] == 1000
    assert recovery["big_restart_s"] > 0 and recovery["big_rss_mib"] > 0
    assert recovery["catch_up_entries"] == 2000 and recovery["catch_up_entries_per_s"] > 0
