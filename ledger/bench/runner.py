"""`ledger bench`: the ledger against a 3-member etcd on the same machine, same load.

Each figure runs the load generator (its own process) against the ledger, then
against etcd, alternating for --rounds rounds; the table shows medians and the
ledger/etcd ratio, plus CPU seconds per 1,000 writes on each side's servers.
"""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass

import grpc

from ledger.tools.localcluster import READY_TIMEOUT_S, ProcessCluster, free_ports

Say = Callable[[str], None]


@dataclass(frozen=True)
class Scenario:
    name: str
    mode: str
    in_flight: int
    accounts: int = 1_000
    etcd: bool = True  # etcd runs it too (the batch API has no etcd twin)


SCENARIOS = {
    "single": Scenario("1 in flight", "spread", 1),
    "spread": Scenario("64 in flight, 1,000 accounts", "spread", 64),
    "hot": Scenario("64 in flight, one hot account", "hot", 64),
    "batch": Scenario("batch API (Submit of 2,000), 4 in flight", "batch", 4, etcd=False),
}


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def run_load(system: str, server: str, scenario: Scenario, seconds: float, pids: list[int],
             etcd_protos: pathlib.Path | None) -> dict[str, float]:
    command = [sys.executable, "-m", "ledger.bench.load", "--system", system,
               "--server", server, "--mode", scenario.mode, "--accounts",
               str(scenario.accounts), "--in-flight", str(scenario.in_flight),
               "--seconds", str(seconds)]
    if etcd_protos is not None:
        command += ["--etcd-protos", str(etcd_protos)]
    before = cpu_seconds(pids)
    result = subprocess.run(command, capture_output=True, text=True, timeout=seconds * 10 + 300)
    if result.returncode != 0:
        raise RuntimeError(f"the {system} load generator failed: {result.stderr[-2000:]}")
    summary: dict[str, float] = json.loads(result.stdout.strip().splitlines()[-1])
    used = cpu_seconds(pids) - before  # includes the load's setup: an upper bound
    summary["cpu_s_per_1000"] = used / max(summary["operations"], 1) * 1000
    return summary


def median(runs: list[dict[str, float]], key: str) -> float:
    return statistics.median(run[key] for run in runs)


def run_bench(say: Say, seconds: float, rounds: int, names: list[str], vs_etcd: bool,
              floor: bool = False) -> dict:  # type: ignore[type-arg]
    """Run every scenario; returns {scenario: {"ledger": summary, "etcd": ..., "floor": ...}}.

    With `floor`, a do-nothing Python gRPC server (ledger.bench.floor) takes the same
    load too: what the gRPC server alone costs, without consensus or disk.
    """
    report: dict[str, dict[str, dict[str, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="ledger-bench-") as base_text, \
            contextlib.ExitStack() as stack:
        base = pathlib.Path(base_text)
        etcd = protos = None
        if vs_etcd:
            from ledger.bench import etcd as etcd_module

            say("installing/compiling etcd (Debian's etcd-server, golang-etcd-server-dev)...")
            etcd_module.ensure_installed()
            protos = etcd_module.compile_protos(base / "etcd-protos")
            etcd = etcd_module.EtcdCluster(base / "etcd")
            etcd.start(protos)
            stack.callback(etcd.stop)
            say(f"etcd 3.4 cluster on {','.join(etcd.addresses)}")
        floor_server = stack.enter_context(FloorServer()) if floor else None
        ledger = stack.enter_context(ProcessCluster(base / "ledger", 3))
        say(f"ledger cluster on {ledger.cluster_flag}")
        ledger_pids = [n.process.pid for n in ledger.nodes if n.process is not None]
        for name in names:
            scenario = SCENARIOS[name]
            runs: dict[str, list[dict[str, float]]] = {"ledger": [], "etcd": [], "floor": []}
            for round_ in range(rounds):
                runs["ledger"].append(run_load("ledger", ledger.addresses[0], scenario,
                                               seconds, ledger_pids, None))
                if etcd is not None and scenario.etcd:
                    runs["etcd"].append(run_load("etcd", etcd.addresses[0], scenario,
                                                 seconds, etcd.pids(), protos))
                if floor_server is not None:
                    runs["floor"].append(run_load("ledger", floor_server.address, scenario,
                                                  seconds, [floor_server.pid], None))
                say(f"  {scenario.name}: round {round_ + 1}/{rounds} done")
            report[name] = {
                system: {key: median(done, key) for key in done[0]}
                for system, done in runs.items() if done
            }
    return report


class FloorServer:
    """A do-nothing Ledger server in its own process (see ledger.bench.floor)."""

    def __init__(self) -> None:
        self.address = f"127.0.0.1:{free_ports(1)[0]}"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    def __enter__(self) -> FloorServer:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "ledger.bench.floor", "--listen", self.address])
        with grpc.insecure_channel(self.address) as channel:
            grpc.channel_ready_future(channel).result(timeout=READY_TIMEOUT_S)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.wait()


def table(report: dict) -> str:  # type: ignore[type-arg]
    lines = [f"{'figure':<46}{'ledger':>12}{'etcd':>12}{'ratio':>9}"]
    etcd_spread = report.get("spread", {}).get("etcd")
    for name, systems in report.items():
        scenario = SCENARIOS[name]
        ledger = systems["ledger"]
        etcd = systems.get("etcd")
        if etcd is None and name == "batch":
            etcd = etcd_spread  # the batch API against etcd's unary figure
        for key, label, higher_is_better in (
            ("throughput", "writes/s", True), ("p50_ms", "p50 ms", False),
            ("p99_ms", "p99 ms", False), ("p999_ms", "p999 ms", False),
            ("cpu_s_per_1000", "CPU s / 1,000 writes", False),
        ):
            theirs = etcd.get(key) if etcd else None
            ratio = ""
            if theirs:
                value = ledger[key] / theirs if higher_is_better else theirs / ledger[key]
                ratio = f"{value:.2f}x"
            lines.append(f"{scenario.name + ': ' + label:<46}{ledger[key]:>12.2f}"
                         f"{(f'{theirs:.2f}' if theirs is not None else '-'):>12}{ratio:>9}")
    lines.append("ratio: how many times better the ledger does (higher is better for it)")
    floors = [(SCENARIOS[name].name, systems["floor"]) for name, systems in report.items()
              if "floor" in systems]
    if floors:
        lines.append("floor: a do-nothing Python gRPC server under the same load")
        for label, floor in floors:
            lines.append(f"  {label}: {floor['throughput']:.0f} calls/s, p50 "
                         f"{floor['p50_ms']:.2f} ms, CPU s / 1,000 calls "
                         f"{floor['cpu_s_per_1000']:.2f}")
    return "\n".join(lines)
