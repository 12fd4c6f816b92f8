"""Running `teller` and `ledger` in tests: in-process (fast) or as real processes."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence

from click.testing import CliRunner, Result

from ledger.cli.main import main as ledger_main
from ledger.cli.teller import teller
from ledger.tools.localcluster import ProcessCluster

# `teller` as a real process, exactly as the console script runs it.
TELLER = [sys.executable, "-c", "from ledger.cli.teller import main; main()"]
LEDGER = [sys.executable, "-m", "ledger"]


def invoke(args: Sequence[str], input: str | None = None,
           env: Mapping[str, str | None] | None = None) -> Result:
    """`teller ARGS` in-process (fast); LEDGER_SERVERS is unset unless `env` sets it."""
    environment: dict[str, str | None] = {"LEDGER_SERVERS": None, **(env or {})}
    return CliRunner().invoke(teller, list(args), input=input, env=environment,
                              catch_exceptions=False)


def invoke_ledger(args: Sequence[str], env: Mapping[str, str | None] | None = None) -> Result:
    """`ledger ARGS` in-process; LEDGER_SERVERS is unset unless `env` sets it."""
    environment: dict[str, str | None] = {"LEDGER_SERVERS": None, **(env or {})}
    return CliRunner().invoke(ledger_main, list(args), env=environment,
                              catch_exceptions=False)


def run(command: Sequence[str], env: Mapping[str, str] | None = None,
        timeout_s: float = 60) -> subprocess.CompletedProcess[str]:
    """A real process; LEDGER_SERVERS is unset unless `env` sets it."""
    environment = {k: v for k, v in os.environ.items() if k != "LEDGER_SERVERS"}
    environment.update(env or {})
    return subprocess.run(list(command), capture_output=True, text=True, env=environment,
                          timeout=timeout_s)


def ledger(*args: str, timeout_s: float = 120, env: Mapping[str, str] | None = None
           ) -> subprocess.CompletedProcess[str]:
    """`ledger ARGS` as a real process (with `env` added to this one's environment)."""
    return run([*LEDGER, *args], env=env, timeout_s=timeout_s)


def node_flags(cluster: ProcessCluster, index: int) -> list[str]:
    """The flags `ledger serve` and `ledger recover` take for node `index` of `cluster`."""
    node = cluster.nodes[index]
    return ["--node-id", node.node_id, "--data-dir", str(node.data_dir),
            "--cluster", cluster.cluster_flag, *cluster.security_flags()]
