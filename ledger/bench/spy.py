"""py-spy on a ledger node while the benchmark's load runs (`ledger bench --profile DIR`).

py-spy is optional (`pip install py-spy`), never a dependency: `ledger bench --profile`
refuses to start without it. It samples the node 250 times a second without pausing
it (--nonblocking), recording only stacks that are running: where the CPU went. It is
started right before the load generator and stopped (SIGINT, on which py-spy writes
its file) once the load generator has exited; its --duration is only a bound in case
that stop never comes. The raw stacks go to DIR/<scenario>-n1.txt, their summary
(ledger.bench.profile) to DIR/<scenario>-n1-summary.txt.
"""

from __future__ import annotations

import contextlib
import math
import pathlib
import shutil
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

from ledger.bench.profile import as_json, render, summarise

INSTALL = "pip install py-spy"
RATE = 250  # samples a second
STOP_TIMEOUT_S = 60.0  # py-spy writing its file after SIGINT


def py_spy() -> str | None:
    """py-spy's path, or None when it is not installed."""
    return shutil.which("py-spy")


@dataclass
class Recording:
    scenario: str  # its key: single, spread, any-node, ...
    title: str  # what was watched, for the summary's first line
    raw: pathlib.Path
    error: str | None = None

    @property
    def summary_path(self) -> pathlib.Path:
        return self.raw.with_name(f"{self.raw.stem}-summary.txt")


class Profiler:
    """Records a node with py-spy around a block; keeps every recording, failed or not."""

    def __init__(self, directory: pathlib.Path, executable: str) -> None:
        self.directory = directory
        self.executable = executable
        self.recordings: list[Recording] = []

    def command(self, pid: int, bound_s: float, raw: pathlib.Path) -> list[str]:
        return [self.executable, "record", "--pid", str(pid), "--duration",
                str(math.ceil(bound_s)), "--rate", str(RATE), "--format", "raw",
                "--output", str(raw), "--nonblocking"]

    @contextlib.contextmanager
    def watch(self, scenario: str, title: str, pid: int, bound_s: float) -> Iterator[None]:
        """py-spy on `pid` while the block runs (at most `bound_s`); its outcome is kept
        in `recordings` and never raised: a failed profile must not lose the figures."""
        self.directory.mkdir(parents=True, exist_ok=True)
        recording = Recording(scenario, title, self.directory / f"{scenario}-n1.txt")
        self.recordings.append(recording)
        process = subprocess.Popen(self.command(pid, bound_s, recording.raw),
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   text=True)
        try:
            yield
        finally:
            recording.error = stop(process, recording.raw)


def stop(process: subprocess.Popen[str], raw: pathlib.Path) -> str | None:
    """Stop py-spy and wait for its file; what went wrong, or None."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
    try:
        output, _ = process.communicate(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
        return f"py-spy did not stop within {STOP_TIMEOUT_S:.0f}s of SIGINT: {output[-1500:]}"
    if process.returncode != 0:
        return failure(process.returncode, output)
    if not raw.exists():
        return f"py-spy exited without writing {raw}: {output[-1500:]}"
    return None


def failure(returncode: int, output: str) -> str:
    how = f"was stopped by signal {-returncode}" if returncode < 0 else f"exited {returncode}"
    text = f"py-spy {how}: {output.strip()[-1500:] or '(no output)'}"
    if any(sign in output for sign in ("ptrace", "Permission denied",
                                       "Operation not permitted")):
        text += ("\n  py-spy needs ptrace rights over the node: run as root, give py-spy "
                 "CAP_SYS_PTRACE, or set kernel.yama.ptrace_scope to 0")
    return text


@dataclass(frozen=True)
class Summaries:
    texts: list[str]  # one per profile that worked, as printed
    reports: dict[str, dict[str, object]]  # scenario: its summary, for --json
    errors: list[str]  # one per profile that failed


def summarise_recordings(recordings: list[Recording]) -> Summaries:
    """Summarise every raw file py-spy wrote, writing each summary beside it."""
    texts, reports, errors = [], {}, []
    for recording in recordings:
        if recording.error is not None:
            errors.append(f"profile of {recording.scenario} failed, the figures stand: "
                          f"{recording.error}")
            continue
        profile = summarise(recording.raw.read_text(errors="replace"))
        text = render(profile, f"{recording.title}\n  raw stacks: {recording.raw}")
        recording.summary_path.write_text(text + "\n")
        texts.append(text)
        reports[recording.scenario] = {**as_json(profile), "raw": str(recording.raw),
                                       "summary": str(recording.summary_path),
                                       "title": recording.title}
    return Summaries(texts, reports, errors)
