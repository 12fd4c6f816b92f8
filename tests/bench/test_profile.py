"""`ledger bench --profile`: py-spy's raw stacks summarised by layer and by function, a
py-spy that fails reported without losing the figures, and a missing one refused
before anything starts."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import textwrap
import time

import pytest
from click.testing import CliRunner

from ledger.bench import spy
from ledger.bench.profile import (
    layer,
    ledger_layer,
    parse_frame,
    parse_raw,
    render,
    summarise,
)
from ledger.cli import bench as bench_cli

ENTRY = ("_run_module_as_main (<frozen runpy>:198);<module> (ledger/__main__.py:5);"
         "serve (ledger/cli/serve.py:111);run (ledger/server/event_loop.py:39);"
         "Runner.run (asyncio/runners.py:118)")
THREAD = "Thread._bootstrap (threading.py:1002);Thread.run (threading.py:982)"

RAW = "\n".join([
    # A Deposit handled in the server, in grpc's code it called: the server's.
    f"{ENTRY};LedgerServicer.Deposit (ledger/server/ledger_servicer.py:80);"
    "_StreamRequestMixin._write (grpc/aio/_call.py:500) 30",
    # The core, two lines of one function: one function in the top list.
    f"{ENTRY};NodeDriver._run (ledger/node/driver.py:230);"
    "PaxosNode.handle (ledger/paxos/node.py:237) 20",
    f"{ENTRY};NodeDriver._run (ledger/node/driver.py:230);"
    "PaxosNode.handle (ledger/paxos/node.py:240) 5",
    # The disk, on a thread; its innermost frame is lmdb's, the ledger's storage called it.
    f"{THREAD};LmdbStore.sync (/srv/app/ledger/storage/lmdb/store.py:147);"
    "Environment.sync (lmdb/cffi.py:900) 25",
    # Nothing of the ledger at work: named by where the innermost frame comes from.
    f"{ENTRY} 10",  # the event loop itself: the program's entry frames do not count
    f"{THREAD};_worker (concurrent/futures/thread.py:81) 4",
    f"{ENTRY};Message.SerializeToString (google/protobuf/message.py:12) 3",
    f"{ENTRY};_handle_call (grpc/_cython/_cygrpc/aio/server.pyx.pxi:20) 2",
    f"{THREAD};Cursor.get (lmdb/cffi.py:10) 1",
    "",
    "not a stack line",
])


def test_a_frame_is_its_function_and_file_without_the_line() -> None:
    frame = parse_frame("NodeDriver._run_core.<locals>.handle (ledger/node/driver.py:324)")
    assert (frame.function, frame.file) == ("NodeDriver._run_core.<locals>.handle",
                                            "ledger/node/driver.py")
    assert frame.label == "NodeDriver._run_core.<locals>.handle (ledger/node/driver.py)"
    assert parse_frame("<module> (<frozen runpy>:88)").file == "<frozen runpy>"
    assert parse_frame("thread (0x7F01)").file == "0x7F01"
    assert parse_frame("odd").label == "odd"


def test_a_ledger_file_belongs_to_its_package_however_deep() -> None:
    assert ledger_layer("ledger/storage/lmdb/store.py") == "storage"
    assert ledger_layer("/home/ledger/ledger/paxos/node.py") == "paxos"
    assert ledger_layer("ledger/errors.py") == "errors"
    assert ledger_layer("grpc/aio/_call.py") is None
    assert ledger_layer("<frozen runpy>") is None


def test_the_layer_is_the_innermost_ledger_frame_at_work_else_the_innermost_origin() -> None:
    stacks = dict((stack[-1].label, stack) for stack, _ in parse_raw(RAW))
    assert len(parse_raw(RAW)) == 9  # the blank line and the stray text are skipped
    assert layer(stacks["_StreamRequestMixin._write (grpc/aio/_call.py)"]) == "server"
    assert layer(stacks["Environment.sync (lmdb/cffi.py)"]) == "storage"
    assert layer(stacks["Runner.run (asyncio/runners.py)"]) == "asyncio"
    assert layer(stacks["_worker (concurrent/futures/thread.py)"]) == "other"
    assert layer(stacks["Message.SerializeToString (google/protobuf/message.py)"]) == "protobuf"
    assert layer(stacks["_handle_call (grpc/_cython/_cygrpc/aio/server.pyx.pxi)"]) == "grpc"
    assert layer(stacks["Cursor.get (lmdb/cffi.py)"]) == "lmdb"
    # Before any loop or thread frame, the ledger's own frames are all there is.
    (startup, _), = parse_raw("<module> (ledger/__main__.py:5);main (ledger/cli/main.py:9) 1")
    assert layer(startup) == "cli"


def test_the_summary_shares_samples_by_layer_and_by_function() -> None:
    profile = summarise(RAW)
    assert profile.samples == 100
    assert profile.layers == [("server", 30), ("paxos", 25), ("storage", 25), ("asyncio", 10),
                              ("other", 4), ("protobuf", 3), ("grpc", 2), ("lmdb", 1)]
    assert profile.top[:3] == [("_StreamRequestMixin._write (grpc/aio/_call.py)", 30),
                               ("Environment.sync (lmdb/cffi.py)", 25),
                               ("PaxosNode.handle (ledger/paxos/node.py)", 25)]
    assert len(summarise(RAW, top=2).top) == 2
    text = render(profile, "profile of single").splitlines()
    assert text[0] == "profile of single"
    assert "100 samples" in text[1]
    layers = text.index("  comes from (asyncio: the event loop, its own C code included)")
    assert text[layers + 1].split() == ["server", "30.0%", "30"]
    assert text[layers + 9].startswith("  top 8 functions")
    assert text[layers + 10].split() == ["30.0%", "30", "_StreamRequestMixin._write",
                                         "(grpc/aio/_call.py)"]
    assert "no samples" in render(summarise(""), "t")


def fake_py_spy(tmp_path: pathlib.Path, body: str) -> str:
    """A py-spy that runs `body`, having said it started (see `started`) and ignoring
    SIGINT, so that its failure shows however soon the block it watches ends."""
    script = tmp_path / "py-spy"
    script.write_text(f"#!/bin/sh\ntrap '' INT\ntouch {tmp_path / 'started'}\n{body}\n")
    script.chmod(0o755)
    return str(script)


def started(tmp_path: pathlib.Path) -> None:
    deadline = time.monotonic() + 30
    while not (tmp_path / "started").exists():
        assert time.monotonic() < deadline, "the fake py-spy never started"
        time.sleep(0.01)


def test_a_py_spy_that_fails_is_reported_with_its_output(tmp_path: pathlib.Path) -> None:
    failing = fake_py_spy(tmp_path, "echo 'Permission denied (os error 13)' >&2; exit 1")
    profiler = spy.Profiler(tmp_path / "out", failing)
    with profiler.watch("single", "profile of single", os.getpid(), 5):
        started(tmp_path)
    (recording,) = profiler.recordings
    assert recording.error is not None
    assert "Permission denied (os error 13)" in recording.error and "ptrace" in recording.error
    summaries = spy.summarise_recordings(profiler.recordings)
    assert summaries.texts == [] and summaries.reports == {}
    assert summaries.errors[0].startswith("profile of single failed, the figures stand")


def test_the_profile_is_asked_of_py_spy_as_the_issue_says(tmp_path: pathlib.Path) -> None:
    profiler = spy.Profiler(tmp_path, "py-spy")
    assert profiler.command(42, 12.5, tmp_path / "single-n1.txt") == [
        "py-spy", "record", "--pid", "42", "--duration", "13", "--rate", "250", "--format",
        "raw", "--output", str(tmp_path / "single-n1.txt"), "--nonblocking"]


def test_without_py_spy_the_profile_is_a_usage_error_before_anything_starts(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no py-spy there
    started = []
    monkeypatch.setattr(bench_cli, "run_bench", lambda *args: started.append(args) or {})
    result = CliRunner().invoke(bench_cli.bench, ["--profile", str(tmp_path / "p")])
    assert result.exit_code == 2, result.output
    assert "pip install py-spy" in result.output
    assert started == [] and not (tmp_path / "p").exists()


def test_a_failed_profile_keeps_the_figures_and_exits_1(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    failing = fake_py_spy(tmp_path, "echo 'cannot attach' >&2; exit 1")
    monkeypatch.setattr(spy, "py_spy", lambda: failing)
    monkeypatch.setattr(bench_cli, "py_spy", lambda: failing)
    figures = {"throughput": 100.0, "p50_ms": 1.0, "p99_ms": 2.0, "p999_ms": 3.0,
               "cpu_s_per_1000": 0.5, "operations": 100.0}

    def run_bench(*args: object) -> dict[str, object]:
        profiler = args[-1]
        assert isinstance(profiler, spy.Profiler)
        with profiler.watch("single", "profile of single", os.getpid(), 5):
            started(tmp_path)
        return {"single": {"ledger": figures}}

    monkeypatch.setattr(bench_cli, "run_bench", run_bench)
    result = CliRunner().invoke(bench_cli.bench, ["--scenarios", "single", "--profile",
                                                  str(tmp_path / "p")])
    assert result.exit_code == 1
    assert "1 in flight: writes/s" in result.output  # the figures are printed first
    assert "error: profile of single failed, the figures stand: py-spy exited 1: " \
        "cannot attach" in result.output


@pytest.mark.skipif(spy.py_spy() is None, reason="py-spy is not installed (pip install py-spy)")
def test_py_spy_records_a_busy_python_process(tmp_path: pathlib.Path) -> None:
    busy = subprocess.Popen([sys.executable, "-c", textwrap.dedent("""
        import json, time
        def churn():
            return sum(len(json.dumps({"n": i})) for i in range(5_000))
        while True:
            churn()
        """)])
    try:
        executable = spy.py_spy()
        assert executable is not None
        profiler = spy.Profiler(tmp_path, executable)
        with profiler.watch("single", "profile of single", busy.pid, 30):
            subprocess.run([sys.executable, "-c", "import time; time.sleep(1.5)"], check=True)
    finally:
        busy.kill()
        busy.wait()
    summaries = spy.summarise_recordings(profiler.recordings)
    assert summaries.errors == [], summaries.errors
    report = summaries.reports["single"]
    assert isinstance(report["samples"], int) and report["samples"] > 50
    assert (tmp_path / "single-n1-summary.txt").read_text().startswith("profile of single")
