"""Repository hygiene: lint-clean, and the core stays free of I/O."""

from __future__ import annotations

import ast
import pathlib
import re
import shutil
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
FORBIDDEN_IN_CORE = {"grpc", "lmdb", "asyncio", "threading", "time", "random", "os", "socket"}


def test_ruff_finds_nothing() -> None:
    ruff = shutil.which("ruff") or str(pathlib.Path(sys.executable).parent / "ruff")
    result = subprocess.run([ruff, "check", str(ROOT)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_paxos_core_imports_no_io_clock_or_global_randomness() -> None:
    for path in (ROOT / "ledger" / "paxos").glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            for name in names:
                assert name.split(".")[0] not in FORBIDDEN_IN_CORE, f"{path.name} imports {name}"


def readme_quick_start() -> list[str]:
    """The set-up commands of the README's quick start, in order."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.+?)\n```", section)


def test_the_readme_has_exactly_two_set_up_commands() -> None:
    demo, tests = readme_quick_start()
    assert "ledger demo" in demo and "pytest" in tests


def test_the_readme_test_command_is_what_ci_runs() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    _, tests = readme_quick_start()
    assert tests in ci.splitlines(), "CI must run exactly the README's test command"
