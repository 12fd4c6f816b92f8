"""`ledger bench`: the ledger against a 3-member etcd on the same machine, same load.

Each figure runs the load generator (its own process) against the ledger, then
against etcd, alternating for --rounds rounds; the table shows medians and the
ledger/etcd ratio, plus CPU seconds per 1,000 writes on each side's servers.

The ledger serves mutual TLS, as it does unless started --insecure; with
--vs-insecure a second, plaintext cluster takes the same load in the same rounds, and
a second table shows what TLS costs (TLS / insecure).

`any-node` sends each write to one of the three nodes (etcd: members) at random, as a
client that ignores leader hints would; every other scenario sends everything to the
first. With a Profiler (--profile), py-spy watches the TLS ledger's first node during
each scenario's first round (ledger.bench.spy).
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

from ledger.bench.observed import start_observed
from ledger.bench.spy import Profiler
from ledger.tools.localcluster import READY_TIMEOUT_S, ProcessCluster, free_ports

Say = Callable[[str], None]


@dataclass(frozen=True)
class Scenario:
    name: str
    mode: str
    in_flight: int
    accounts: int = 1_000
    etcd: bool = True  # etcd runs it too (the batch API and the client library have no twin)


SCENARIOS = {
    "single": Scenario("1 in flight", "spread", 1),
    "spread": Scenario("64 in flight, 1,000 accounts", "spread", 64),
    "any-node": Scenario("64 in flight, 1,000 accounts, any node", "any-node", 64),
    "hot": Scenario("64 in flight, one hot account", "hot", 64),
    "batch": Scenario("batch API (Submit of 2,000), 4 in flight", "batch", 4, etcd=False),
    "client": Scenario("client library, 64 threads in one process", "client", 64,
                       etcd=False),
    "client-unary": Scenario("client library, unary calls, 64 threads", "client-unary", 64,
                             etcd=False),
    "transfer": Scenario("transfers, 64 in flight, 1,000 accounts", "transfer", 64,
                         etcd=False),
}


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class System:
    """One side of a comparison: where the load goes, how the load generator dials it
    and whose CPU it costs."""

    name: str  # its key in the report: ledger (TLS) | insecure | etcd | floor
    kind: str  # the load generator's --system: ledger | etcd
    addresses: tuple[str, ...]  # every node (etcd: member); the first takes the load
    pids: tuple[int, ...]  # the first is the first address's server
    flags: tuple[str, ...]  # for the load generator: TLS settings, or etcd's protos
    every_scenario: bool = True  # False: only scenarios with an etcd twin

    def runs(self, scenario: Scenario) -> bool:
        return self.every_scenario or scenario.etcd

    @property
    def address(self) -> str:
        return self.addresses[0]


def ledger_system(name: str, cluster: ProcessCluster) -> System:
    pids = tuple(n.process.pid for n in cluster.nodes if n.process is not None)
    return System(name, "ledger", tuple(cluster.addresses), pids,
                  tuple(cluster.client_flags()))


def load_timeout_s(seconds: float) -> float:
    return seconds * 10 + 300


def run_load(system: System, scenario: Scenario, seconds: float,
             watch: contextlib.AbstractContextManager[None] | None = None) -> dict[str, float]:
    """One run of the load generator against `system`, inside `watch` (a profiler)."""
    command = [sys.executable, "-m", "ledger.bench.load", "--system", system.kind,
               "--server", ",".join(system.addresses), "--mode", scenario.mode,
               "--accounts", str(scenario.accounts), "--in-flight", str(scenario.in_flight),
               "--seconds", str(seconds), *system.flags]
    pids = list(system.pids)
    before = cpu_seconds(pids)
    with watch or contextlib.nullcontext():
        result = subprocess.run(command, capture_output=True, text=True,
                                timeout=load_timeout_s(seconds))
    if result.returncode != 0:
        raise RuntimeError(f"the {system.name} load generator failed: {result.stderr[-2000:]}")
    summary: dict[str, float] = json.loads(result.stdout.strip().splitlines()[-1])
    used = cpu_seconds(pids) - before  # includes the load's setup: an upper bound
    summary["cpu_s_per_1000"] = used / max(summary["operations"], 1) * 1000
    return summary


def median(runs: list[dict[str, float]], key: str) -> float:
    return statistics.median(run[key] for run in runs)


def start_etcd(stack: contextlib.ExitStack, base: pathlib.Path, say: Say) -> System:
    from ledger.bench import etcd as etcd_module

    say("installing/compiling etcd (Debian's etcd-server, golang-etcd-server-dev)...")
    etcd_module.ensure_installed()
    protos = etcd_module.compile_protos(base / "etcd-protos")
    etcd = etcd_module.EtcdCluster(base / "etcd")
    stack.callback(etcd.stop)  # before start: a member that did not come up is stopped too
    etcd.start(protos)
    say(f"etcd 3.4 cluster on {','.join(etcd.addresses)}")
    return System("etcd", "etcd", tuple(etcd.addresses), tuple(etcd.pids()),
                  ("--etcd-protos", str(protos)), every_scenario=False)


def start_systems(stack: contextlib.ExitStack, base: pathlib.Path, say: Say, vs_etcd: bool,
                  floor: bool, vs_insecure: bool, vs_metrics: bool = False) -> list[System]:
    """Everything the load will be sent to, started; the TLS ledger first."""
    systems = []
    ledger = stack.enter_context(ProcessCluster(base / "ledger", 3))
    say(f"ledger cluster (mutual TLS) on {ledger.cluster_flag}")
    systems.append(ledger_system("ledger", ledger))
    if vs_insecure:
        plain = stack.enter_context(ProcessCluster(base / "insecure", 3, tls=False))
        say(f"ledger cluster (--insecure, plaintext) on {plain.cluster_flag}")
        systems.append(ledger_system("insecure", plain))
    if vs_metrics:
        observed = start_observed(stack, base / "metrics")
        say(f"ledger cluster (mutual TLS, metrics scraped and the dashboard's reads every "
            f"second, a loaded account traced) on {observed.cluster_flag}")
        systems.append(ledger_system("metrics", observed))
    if vs_etcd:
        systems.append(start_etcd(stack, base, say))
    if floor:
        server = stack.enter_context(FloorServer())
        systems.append(System("floor", "ledger", (server.address,), (server.pid,),
                              ("--insecure",)))  # the floor serves plaintext only
    return systems


#: Ledger clusters compared with the plain TLS one: (name, title, its column's heading,
#: what the ratio shows).
VARIANTS = (
    ("insecure", "TLS against plaintext: the same load on a cluster started --insecure",
     "insecure", "TLS / insecure (writes/s under 1x, latency and CPU over 1x: what TLS "
     "costs)"),
    ("metrics", "Watched against not: the same load on a cluster serving metrics, scraped "
     "and read as the dashboard does every second, with a loaded account traced", "watched",
     "watched / plain (writes/s under 1x, latency and CPU over 1x: what watching costs)"),
)


def round_order(systems: list[System], round_: int) -> list[System]:
    """The systems in the order a round runs them: the TLS ledger and each variant of it
    swap places every other round, so neither always runs right after the other."""
    order = list(systems)
    names = [s.name for s in order]
    if round_ % 2 == 1:
        for variant, *_ in VARIANTS:
            if variant in names:
                first, second = names.index("ledger"), names.index(variant)
                order[first], order[second] = order[second], order[first]
                names = [s.name for s in order]
    return order


def profile_title(name: str, scenario: Scenario, pid: int) -> str:
    title = (f"profile of {name} ({scenario.name}): node 1 of the TLS ledger (pid {pid}), "
             "first round")
    if scenario.mode == "any-node":
        title += ("\n  any-node: the clients send node 1 only a third of the writes; nodes 2 "
                  "and 3 take the rest and forward those of accounts they do not lead")
    return title


def profile_watch(profiler: Profiler | None, name: str, scenario: Scenario, system: System,
          round_: int, seconds: float) -> contextlib.AbstractContextManager[None] | None:
    """The profiler around this run if it is the TLS ledger's first round, else None."""
    if profiler is None or round_ != 0 or system.name != "ledger":
        return None
    pid = system.pids[0]  # node 1: it takes the load (a third of it under any-node)
    return profiler.watch(name, profile_title(name, scenario, pid), pid,
                          load_timeout_s(seconds))


def run_bench(say: Say, seconds: float, rounds: int, names: list[str], vs_etcd: bool,
              floor: bool = False, vs_insecure: bool = False, vs_metrics: bool = False,
              profiler: Profiler | None = None) -> dict:  # type: ignore[type-arg]
    """Run every scenario; returns {scenario: {"ledger": summary, "etcd": ..., "floor": ...,
    "insecure": ...}}, each the medians over the rounds.

    "ledger" is a cluster serving mutual TLS, as every ledger does unless told otherwise.
    With `vs_insecure`, a second cluster started --insecure (plaintext) takes the same
    load, alternating with it round by round: what TLS costs; with `vs_metrics`, so does a
    cluster serving metrics with one account traced ("metrics"). With `floor`, a do-nothing
    Python gRPC server (ledger.bench.floor) takes the same load too: what the gRPC server
    alone costs, without consensus or disk. With `profiler`, py-spy watches the TLS
    ledger's first node during each scenario's first round (see `profiler.recordings`).
    """
    report: dict[str, dict[str, dict[str, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="ledger-bench-") as base_text, \
            contextlib.ExitStack() as stack:
        systems = start_systems(stack, pathlib.Path(base_text), say, vs_etcd, floor,
                                vs_insecure, vs_metrics)
        for name in names:
            scenario = SCENARIOS[name]
            runs: dict[str, list[dict[str, float]]] = {s.name: [] for s in systems}
            for round_ in range(rounds):
                for system in round_order(systems, round_):
                    if system.runs(scenario):
                        runs[system.name].append(run_load(
                            system, scenario, seconds,
                            profile_watch(profiler, name, scenario, system, round_,
                                          seconds)))
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
        with grpc.insecure_channel(self.address) as channel:  # the floor serves plaintext
            grpc.channel_ready_future(channel).result(timeout=READY_TIMEOUT_S)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.wait()


#: The width of the tables' first column: the longest label.
LABEL = max(len(s.name) for s in SCENARIOS.values()) + len(": CPU s / 1,000 writes") + 2


def table(report: dict) -> str:  # type: ignore[type-arg]
    lines = [f"{'figure':<{LABEL}}{'ledger':>12}{'etcd':>12}{'ratio':>9}"]
    etcd_spread = report.get("spread", {}).get("etcd")
    for name, systems in report.items():
        scenario = SCENARIOS[name]
        ledger = systems["ledger"]
        etcd = systems.get("etcd")
        if etcd is None and not scenario.etcd:
            etcd = etcd_spread  # against etcd's unary figure
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
            lines.append(f"{scenario.name + ': ' + label:<{LABEL}}{ledger[key]:>12.2f}"
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
    lines.extend(tls_table(report))
    return "\n".join(lines)


#: The figures of the variants' comparisons: (summary key, label).
TLS_FIGURES = (("throughput", "writes/s"), ("p50_ms", "p50 ms"), ("p99_ms", "p99 ms"),
               ("cpu_s_per_1000", "CPU s / 1,000 writes"))


def variant_ratios(report: dict, variant: str = "insecure"  # type: ignore[type-arg]
                   ) -> dict[str, dict[str, float]]:
    """What the difference costs, per scenario both ran, for each of TLS_FIGURES: TLS /
    insecure for the plaintext variant, watched / plain for the watched one (writes/s
    under 1x, latency and CPU over 1x: a cost). None is left out unless its denominator
    is 0."""
    ratios: dict[str, dict[str, float]] = {}
    for name, systems in report.items():
        tls, other = systems.get("ledger"), systems.get(variant)
        if tls is None or other is None:
            continue
        costly, base = (tls, other) if variant == "insecure" else (other, tls)
        ratios[name] = {key: costly[key] / base[key] for key, _ in TLS_FIGURES if base[key]}
    return ratios


def tls_ratios(report: dict) -> dict[str, dict[str, float]]:  # type: ignore[type-arg]
    """TLS / insecure for each of TLS_FIGURES, per scenario both ran."""
    return variant_ratios(report, "insecure")


def tls_table(report: dict) -> list[str]:  # type: ignore[type-arg]
    """Each variant's figures beside the TLS cluster's, and their ratio."""
    lines = []
    for variant, title, heading, meaning in VARIANTS:
        ratios = variant_ratios(report, variant)
        if not ratios:
            continue
        first = "TLS" if variant == "insecure" else "plain"
        lines += [title, f"{'figure':<{LABEL}}{first:>12}{heading:>12}{'ratio':>9}"]
        for name, by_key in ratios.items():
            tls, other = report[name]["ledger"], report[name][variant]
            for key, label in TLS_FIGURES:
                ratio = f"{by_key[key]:.2f}x" if key in by_key else ""
                lines.append(f"{SCENARIOS[name].name + ': ' + label:<{LABEL}}"
                             f"{tls[key]:>12.2f}{other[key]:>12.2f}{ratio:>9}")
        lines.append(f"ratio: {meaning}")
    return lines
