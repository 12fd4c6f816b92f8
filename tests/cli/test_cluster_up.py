"""`ledger cluster up` as a real process: SIGTERM (a supervisor's stop) and SIGHUP stop
its nodes as Ctrl-C does, instead of ending the supervisor and leaving them running."""

from __future__ import annotations

import pathlib
import signal
import socket
import subprocess
import time

import pytest

from tests.support.cli import LEDGER

pytestmark = pytest.mark.xdist_group("processes")

UP_TIMEOUT_S = 60.0
NODES = 3


def consecutive_free_ports(count: int) -> int:
    """A base port whose next `count` ports are free right now."""
    for _ in range(50):
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        base = probe.getsockname()[1]
        probe.close()
        if base + count > 65535:
            continue
        sockets = []
        try:
            for port in range(base, base + count):
                sock = socket.socket()
                sock.bind(("127.0.0.1", port))
                sockets.append(sock)
            return base
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
    raise RuntimeError("no run of free ports found")


def serving(data_dir: pathlib.Path) -> list[str]:
    """The `ledger serve` processes of this cluster still running."""
    found = subprocess.run(["pgrep", "-f", f"ledger serve .*{data_dir}"], capture_output=True,
                           text=True)
    return found.stdout.split()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_a_signal_to_cluster_up_stops_every_node(tmp_path: pathlib.Path, signum: int) -> None:
    data_dir = tmp_path / "data"
    base = consecutive_free_ports(NODES)
    supervisor = subprocess.Popen(
        [*LEDGER, "cluster", "up", "--nodes", str(NODES), "--base-port", str(base),
         "--data-dir", str(data_dir), "--insecure"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + UP_TIMEOUT_S
        assert supervisor.stderr is not None
        said: list[str] = []
        while not any("is up" in line for line in said):
            assert time.monotonic() < deadline, said
            line = supervisor.stderr.readline()
            assert line, f"cluster up ended: {said}"
            said.append(line)
        assert len(serving(data_dir)) == NODES
        supervisor.send_signal(signum)
        _, rest = supervisor.communicate(timeout=UP_TIMEOUT_S)
        assert "cluster stopped" in rest, rest
        assert supervisor.returncode == 0
        assert serving(data_dir) == []
    finally:
        if supervisor.poll() is None:
            supervisor.kill()
        for pid in serving(data_dir):
            subprocess.run(["kill", "-9", pid], check=False)
