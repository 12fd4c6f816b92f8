"""Repository hygiene: lint-clean, and the README's commands are what CI runs.

The core's purity and the layers are import-linter contracts (tests/test_architecture.py).
"""

from __future__ import annotations

import pathlib
import re
import shutil
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_ruff_finds_nothing() -> None:
    ruff = shutil.which("ruff") or str(pathlib.Path(sys.executable).parent / "ruff")
    result = subprocess.run([ruff, "check", str(ROOT)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


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
