"""The layers are enforced, not just drawn: import-linter's contracts (pyproject.toml)
hold for the tree, and catch a planted upward import, a clock in the core and the
public API's protobuf inside the bank."""

from __future__ import annotations

import pathlib
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
MAX_MODULE_LINES = 500  # a module longer than this is doing more than one job


def lint_imports(root: pathlib.Path) -> subprocess.CompletedProcess[str]:
    command = shutil.which("lint-imports") or str(pathlib.Path(sys.executable).parent /
                                                  "lint-imports")
    # PYTHONPATH first: a planted copy of the package must shadow the installed one.
    return subprocess.run([command, "--no-cache"], cwd=root, capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(root)}, timeout=120)


def test_every_import_contract_holds() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(("module", "planted", "caught"), [
    ("ledger/storage/memory.py", "import ledger.bank.service",
     "ledger.storage is not allowed to import ledger.bank"),
    ("ledger/paxos/ballot.py", "import time",
     "ledger.paxos is not allowed to import time"),
    ("ledger/bank/reads.py", "from ledger.v1 import ledger_pb2",
     "ledger.bank is not allowed to import ledger.v1.ledger_pb2"),
    ("ledger/bank/writes.py", "from ledger.node.driver import NodeDriver",
     "ledger.bank is not allowed to import ledger.node.driver"),
])
def test_a_planted_import_breaks_a_contract(tmp_path: pathlib.Path, module: str, planted: str,
                                            caught: str) -> None:
    shutil.copytree(ROOT / "ledger", tmp_path / "ledger",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    with open(tmp_path / module, "a") as source:
        source.write(f"\n{planted}  # planted by the test\n")
    result = lint_imports(tmp_path)
    assert result.returncode != 0, result.stdout
    assert caught in " ".join(result.stdout.split()), result.stdout


def test_no_module_does_more_than_one_job() -> None:
    """A module past MAX_MODULE_LINES has more than one job; generated code aside."""
    long = {str(path.relative_to(ROOT)): lines for path in (ROOT / "ledger").rglob("*.py")
            if "v1" not in path.relative_to(ROOT).parts
            and (lines := len(path.read_text().splitlines())) > MAX_MODULE_LINES}
    assert not long, f"split these by job: {long}"
