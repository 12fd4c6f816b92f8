"""Restart and catch-up: how long a big node takes to serve again, how fast a node catches up.

Data directories are built with the node's own code (the ledger state machine over
the group-commit LMDB store), as if every entry had been chosen one at a time:
slot 0 opens an account, each later slot deposits into it.
"""

from __future__ import annotations

import pathlib
import shutil
import time
from collections.abc import Callable

from ledger.accounts import Kind, Operation
from ledger.bank import codec
from ledger.bank.state_machine import LedgerStateMachine
from ledger.bench.memory import resident_kib
from ledger.client.admin import node_counters, node_serving
from ledger.node.cluster import ClusterConfig
from ledger.paxos import ChosenWrite, Committed
from ledger.security.tls import Security
from ledger.storage.base import Incarnation, NodeIdentity
from ledger.storage.group_commit import GroupCommitStore
from ledger.storage.lmdb import LmdbStore
from ledger.tools.localcluster import ProcessCluster, free_ports
from ledger.tools.replicas import node_view

Say = Callable[[str], None]
SYNC_EVERY = 20_000  # entries per commit while building
CHUNK = 1_000  # entries applied at once
STATUS_TIMEOUT_S = 5.0


def build_data_dir(path: pathlib.Path, accounts: int, entries: int) -> None:
    """A node's data directory holding `entries` chosen and applied log entries."""
    store = GroupCommitStore(LmdbStore(path, app_tables=LedgerStateMachine.TABLES,
                                       map_size_bytes=4 << 30))
    machine = LedgerStateMachine(store)
    per_account, extra = divmod(entries, accounts)
    staged = 0
    for account_index in range(accounts):
        account = f"acct-{account_index}"
        count = per_account + (1 if account_index < extra else 0)
        for start in range(0, count, CHUNK):
            chunk = []
            for slot in range(start, min(count, start + CHUNK)):
                kind, amount = (Kind.OPEN, 0) if slot == 0 else (Kind.DEPOSIT, 1)
                value = codec.encode_entry([Operation(kind, amount, f"r{slot}", "")])
                chunk.append(Committed(account, slot, value))
            # As catch-up applies them: a batch of chosen values at a time.
            store.stage([ChosenWrite(c.account, c.slot, c.value) for c in chunk])
            store.stage(machine.apply(chunk))
            staged += len(chunk)
            if staged >= SYNC_EVERY:
                store.stage(machine.flush())
                store.sync()
                staged = 0
    store.stage(machine.flush())
    store.close()


def set_identity(path: pathlib.Path, node_id: str, cluster: ClusterConfig) -> None:
    store = LmdbStore(path, app_tables=LedgerStateMachine.TABLES)
    # Each copy is its own directory: its own incarnation, already known to be a member.
    store.set_identity(NodeIdentity(node_id, cluster.as_pairs(), Incarnation.new(0)))
    store.close()


def cluster_on(base: pathlib.Path, template: pathlib.Path | None) -> ProcessCluster:
    """A 3-node cluster whose nodes start from copies of `template` (or empty)."""
    cluster = ProcessCluster(base, 3, ports=free_ports(3))
    config = ClusterConfig.parse(cluster.cluster_flag)
    for node in cluster.nodes:
        if template is not None:
            shutil.copytree(template, node.data_dir)
            set_identity(node.data_dir, node.node_id, config)
    return cluster


def memory_mib(pid: int) -> int:
    return resident_kib(pid).get("RssAnon", 0) // 1024


def restart_seconds(cluster: ProcessCluster, index: int) -> tuple[float, int]:
    """SIGKILL a node, start it again; seconds until it serves, and its anonymous RSS."""
    security = cluster.security  # read before the clock starts: it loads the PEM files
    cluster.kill(index)
    started = time.monotonic()
    cluster.start_node(index, wait=False)
    node = cluster.nodes[index]
    while not node_serving(node.address, security, timeout_s=0.5):
        assert node.running, cluster.log_tail(index)
        time.sleep(0.01)
    elapsed = time.monotonic() - started
    assert node.process is not None
    return elapsed, memory_mib(node.process.pid)


def measure_restart(base: pathlib.Path, entries: int, accounts: int, say: Say) -> dict[str, float]:
    results: dict[str, float] = {}
    for label, count in (("small", min(1_000, entries)), ("big", entries)):
        template = base / f"template-{label}"
        say(f"building a data directory with {count:,} entries over {accounts:,} accounts...")
        started = time.monotonic()
        build_data_dir(template, accounts, count)
        say(f"  built in {time.monotonic() - started:.0f} s")
        with cluster_on(base / f"cluster-{label}", template) as cluster:
            seconds, rss = restart_seconds(cluster, 0)
            results[f"{label}_restart_s"] = seconds
            results[f"{label}_rss_mib"] = rss
            results[f"{label}_entries"] = count
        shutil.rmtree(template)
    results["rss_ratio"] = results["big_rss_mib"] / max(results["small_rss_mib"], 1)
    return results


def applied_entries(address: str, security: Security) -> int:
    """How many log entries the node at `address` applied since it started (0 if down)."""
    return (node_counters(address, 5, security) or {}).get("applied", 0)


def measure_catch_up(base: pathlib.Path, entries: int, accounts: int, say: Say
                     ) -> dict[str, float]:
    """Two nodes hold `entries`; the third starts empty: entries/s until it holds them all."""
    template = base / "template-catch-up"
    say(f"building two replicas with {entries:,} entries over {accounts:,} accounts...")
    build_data_dir(template, accounts, entries)
    cluster = cluster_on(base / "cluster-catch-up", None)
    config = ClusterConfig.parse(cluster.cluster_flag)
    for node in cluster.nodes[:2]:
        shutil.copytree(template, node.data_dir)
        set_identity(node.data_dir, node.node_id, config)
    shutil.rmtree(template)
    try:
        cluster.start_node(0)
        cluster.start_node(1)
        security = cluster.security
        target = node_view(cluster.addresses[0], STATUS_TIMEOUT_S, security) or {}
        assert sum(v.chosen_through + 1 for v in target.values()) == entries
        lagging = cluster.nodes[2]
        cluster.start_node(2)  # serving: from here on it only has to catch up
        started = time.monotonic()
        while True:
            # Polled through a counter: listing every account's status this often would
            # take a good share of the CPU of the node being measured.
            if applied_entries(lagging.address, security) >= entries:
                seconds = time.monotonic() - started
                if node_view(lagging.address, STATUS_TIMEOUT_S, security) == target:
                    break
            time.sleep(0.05)
    finally:
        cluster.stop()
    return {"catch_up_entries": entries, "catch_up_s": seconds,
            "catch_up_entries_per_s": entries / seconds}
