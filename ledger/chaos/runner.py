"""One chaos run: cluster up, workload and nemesis together, heal, collect, check, report."""

from __future__ import annotations

import json
import pathlib
import shutil
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field

from ledger.chaos.checker import Violation, check
from ledger.chaos.history import (
    FAILED,
    INDETERMINATE,
    OK,
    REFUSED,
    LogEntry,
    RunRecord,
    write_jsonl,
)
from ledger.chaos.nemesis import NETWORK_NEMESES, Nemesis
from ledger.chaos.netns import Topology
from ledger.chaos.workload import Recorder, WorkloadConfig, open_hot_accounts, run_clients
from ledger.client import AccountNotFound, LedgerClient, LedgerError
from ledger.security.tls import Security
from ledger.tools.localcluster import ProcessCluster
from ledger.tools.replicas import NodeView, converged, node_view, node_views

CONVERGENCE_TIMEOUT_S = 90.0
STATUS_TIMEOUT_S = 5.0  # per node, per status read
SETTLE_ATTEMPTS = 5  # readings of the logs, at most, until no log moved during one
PORT = 7001


@dataclass(frozen=True)
class ChaosConfig:
    nodes: int = 3
    nemeses: tuple[str, ...] = ("kill",)
    seconds: float = 30.0
    seed: int = 0
    clients: int = 8
    out_dir: pathlib.Path = pathlib.Path("chaos-out")

    @property
    def needs_network(self) -> bool:
        return bool(set(self.nemeses) & set(NETWORK_NEMESES))


@dataclass
class Report:
    config: dict[str, object]
    operations: int
    outcomes: dict[str, int]
    acknowledged_writes: int
    acknowledged_transfers: int
    refused_transfers: int
    audits: int
    faults: dict[str, int]
    converged: bool
    accounts: int
    log_entries: int
    violations: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.converged and not self.violations

    def text(self) -> str:
        nemeses = ",".join(self.config["nemeses"])  # type: ignore[arg-type]
        outcomes = ", ".join(f"{k} {v}" for k, v in sorted(self.outcomes.items()))
        faults = ", ".join(f"{k} {v}" for k, v in sorted(self.faults.items())) or "none"
        lines = [
            f"chaos run: {self.config['nodes']} nodes, nemeses {nemeses}, "
            f"{self.config['seconds']} s, seed {self.config['seed']}",
            f"operations: {self.operations} ({outcomes})",
            f"acknowledged writes: {self.acknowledged_writes} (transfers "
            f"{self.acknowledged_transfers}, {self.refused_transfers} more refused); "
            f"audits {self.audits}",
            f"faults injected: {faults}",
            f"replicas converged: {'yes' if self.converged else 'NO'}; "
            f"{self.accounts} accounts, {self.log_entries} log entries",
            f"checker: {'PASS' if self.passed else 'FAIL'} "
            f"({len(self.violations)} violations)",
            *(f"  {v}" for v in self.violations[:50]),
        ]
        return "\n".join(lines) + "\n"


def run(config: ChaosConfig, topology: Topology | None = None) -> Report:
    """Run the scenario (inside `topology`'s hub namespace if it has network nemeses)."""
    assert topology is not None or not config.needs_network
    config.out_dir.mkdir(parents=True, exist_ok=True)
    cluster = make_cluster(config, topology)
    recorder = Recorder()
    workload = WorkloadConfig(clients=config.clients, seed=config.seed)
    with cluster:
        addresses = cluster.addresses
        security = cluster.security  # its local client certificate: every client role
        open_hot_accounts(addresses, security, workload, recorder)
        nemesis = Nemesis(cluster, list(config.nemeses), config.seed, recorder.now_ms, topology,
                          copies_dir=config.out_dir / "copies")
        stop = threading.Event()
        nemesis.start()
        try:
            stuck = run_clients(addresses, security, workload, recorder, config.seconds, stop,
                                config.out_dir / "stuck-clients.txt")
        finally:
            nemesis.stop_and_heal()
        problems = list(nemesis.failures)  # what the nemeses saw go wrong
        problems += [Violation("workload", f"client {number}",
                               "still running long after the run ended (an operation "
                               "without a deadline?): its stack is in stuck-clients.txt")
                     for number in stuck]
        all_serving = True
        for index, node in enumerate(cluster.nodes):
            try:
                cluster.wait_ready(index)
            except (RuntimeError, TimeoutError) as error:
                all_serving = False
                problems.append(Violation("nemesis", node.node_id,
                                          f"not serving after the heal: {error}"))
        with Audits(addresses, security) as audits:
            converged = all_serving and wait_until_idle(addresses, security, audits)
            record = RunRecord(recorder.ops, nemesis.events,
                               settled_logs(addresses, security, audits))
    violations = problems + check(record)
    report = summarize(config, record, converged, violations)
    write_jsonl(config.out_dir / "history.jsonl", record.ops)
    write_jsonl(config.out_dir / "faults.jsonl", record.faults)
    (config.out_dir / "logs.json").write_text(json.dumps(
        {replica: {a: [asdict(e) for e in entries] for a, entries in logs.items()}
         for replica, logs in record.logs.items()}))
    (config.out_dir / "report.txt").write_text(report.text())
    (config.out_dir / "report.json").write_text(json.dumps({**asdict(report),
                                                            "passed": report.passed}))
    return report


def make_cluster(config: ChaosConfig, topology: Topology | None) -> ProcessCluster:
    """The run's cluster, on fresh directories, with mutual TLS (certificates for each
    member's own address: in namespaces, every node has its own host)."""
    # A previous run's nodes would bring their accounts into this run's history, and
    # their certificates name that run's addresses (another subnet): start afresh.
    for stale in (config.out_dir / "nodes", config.out_dir / "copies"):
        shutil.rmtree(stale, ignore_errors=True)
    if topology is not None:
        return ProcessCluster(
            config.out_dir / "nodes", config.nodes,
            hosts=[topology.address(i) for i in range(config.nodes)], ports=[PORT] * config.nodes,
            wrap=lambda index, command: [*topology.exec_prefix(topology.node_namespace(index)),
                                         *command], tls=True)
    return ProcessCluster(config.out_dir / "nodes", config.nodes, tls=True)


def summarize(config: ChaosConfig, record: RunRecord, converged: bool,
              violations: list[Violation]) -> Report:
    outcomes = Counter(op.outcome for op in record.ops)
    for outcome in (OK, REFUSED, FAILED, INDETERMINATE):
        outcomes.setdefault(outcome, 0)
    reference = next(iter(record.logs.values()), {})
    return Report(
        config={"nodes": config.nodes, "nemeses": list(config.nemeses),
                "seconds": config.seconds, "seed": config.seed, "clients": config.clients},
        operations=len(record.ops),
        outcomes=dict(outcomes),
        acknowledged_writes=sum(1 for op in record.ops if op.is_write and op.outcome == OK),
        acknowledged_transfers=sum(1 for op in record.ops
                                   if op.kind == "transfer" and op.outcome == OK),
        refused_transfers=sum(1 for op in record.ops
                              if op.kind == "transfer" and op.outcome == REFUSED),
        audits=sum(1 for op in record.ops if op.kind == "audit" and op.outcome == OK),
        faults=dict(Counter(e.kind for e in record.faults if e.kind != "heal")),
        converged=converged,
        accounts=len(reference),
        log_entries=sum(len(entries) for entries in reference.values()),
        violations=[str(v) for v in violations],
    )


class Audits:
    """One bank client per node, to read each node's audit totals: one channel each for
    every poll of a wait."""

    def __init__(self, addresses: list[str], security: Security) -> None:
        self._banks = [LedgerClient([address], timeout_s=STATUS_TIMEOUT_S, security=security)
                       for address in addresses]

    def transfers_idle(self) -> bool:
        """No node's applied cut has a transfer in flight (False if a node does not answer)."""
        try:
            return all(bank.audit(totals_only=True).transfers_in_flight == 0
                       for bank in self._banks)
        except LedgerError:
            return False

    def __enter__(self) -> Audits:
        return self

    def __exit__(self, *exc_info: object) -> None:
        for bank in self._banks:
            bank.close()


def idle_view(addresses: list[str], security: Security, audits: Audits) -> NodeView | None:
    """The replicas' common view if they agree and no transfer is in flight on any node,
    checked before and after the audits so nothing moved in between; else None.

    Both at once: a write whose client gave up may still be chosen after the heal (its
    proposer retries until a majority answers), and a transfer's debit chosen that late
    leaves it in flight until a courier completes it, which writes again.
    """
    before = converged(node_views(addresses, STATUS_TIMEOUT_S, security))
    if before is None or not audits.transfers_idle():
        return None
    after = converged(node_views(addresses, STATUS_TIMEOUT_S, security))
    return before if before == after else None


def wait_until_idle(addresses: list[str], security: Security, audits: Audits,
                    timeout_s: float = CONVERGENCE_TIMEOUT_S) -> bool:
    """Poll until every replica holds and has applied the same log for every account,
    with no transfer in flight: those whose proposer gave up (or died) are completed by
    the nodes' couriers, without a client asking again."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if idle_view(addresses, security, audits) is not None:
            return True
        time.sleep(0.25)
    return False


def settled_logs(addresses: list[str], security: Security, audits: Audits
                 ) -> dict[str, dict[str, list[LogEntry]]]:
    """Every replica's histories, read while no log moved.

    A write whose client gave up (its outcome unknown) may still be chosen after the
    replicas converged: its proposer retries until a majority answers. Read across
    such a decision, the replicas read first would look a slot short. So the logs are
    read again until the replicas' idle views before and after the reading are the same
    (the last reading is kept if they never settle).
    """
    logs: dict[str, dict[str, list[LogEntry]]] = {}
    for _ in range(SETTLE_ATTEMPTS):
        before = idle_view(addresses, security, audits)
        logs = read_logs(addresses, security)
        after = idle_view(addresses, security, audits)
        if before is not None and before == after:
            return logs
        wait_until_idle(addresses, security, audits)
    return logs


def read_logs(addresses: list[str], security: Security
              ) -> dict[str, dict[str, list[LogEntry]]]:
    """Every replica's history of every account it knows, read LOCAL (no consensus)."""
    logs: dict[str, dict[str, list[LogEntry]]] = {}
    for address in addresses:
        views = node_view(address, STATUS_TIMEOUT_S, security) or {}
        per_account: dict[str, list[LogEntry]] = {}
        with LedgerClient([address], timeout_s=10, security=security) as bank:
            for account in sorted(views):
                entries: list[LogEntry] = []
                while True:
                    try:
                        page = bank.history(account, from_position=len(entries), limit=1_000,
                                            local=True)
                    except AccountNotFound:
                        break  # known to the log but not open here (nothing applied)
                    entries.extend(LogEntry(e.position, e.kind, e.amount, e.balance_after,
                                            e.request_id, e.rejected, e.counterparty)
                                   for e in page)
                    if len(page) < 1_000:
                        break
                per_account[account] = entries
        logs[address] = per_account
    return logs
