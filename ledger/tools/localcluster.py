"""Real `ledger serve` processes on this machine: for tests, the demo, chaos runs and benchmarks.

Each node is a child process with its own data directory and log file. Nodes can
be stopped politely (SIGTERM), killed (SIGKILL), paused (SIGSTOP) and resumed,
and restarted on the same data directory and port.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ledger.client.admin import node_serving
from ledger.node.cluster import ClusterConfig
from ledger.security.tls import ENV_INSECURE, INSECURE, Security
from ledger.tools.local_certs import LocalCerts, ensure_local_certs

READY_TIMEOUT_S = 60.0  # generous: a loaded 2-core machine starts Python slowly


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """Ports the kernel says are free right now (held open together so they differ)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind((host, 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


@dataclass
class LocalNode:
    node_id: str
    host: str
    port: int
    data_dir: pathlib.Path
    log_path: pathlib.Path
    process: subprocess.Popen[bytes] | None = None
    paused: bool = False

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


class ProcessCluster:
    """A cluster of `ledger serve` processes. Use as a context manager: it cleans up."""

    def __init__(
        self,
        base_dir: pathlib.Path,
        size: int = 3,
        *,
        host: str = "127.0.0.1",
        ports: Sequence[int] | None = None,
        extra_args: Sequence[str] = (),
        env: dict[str, str] | None = None,
        hosts: Sequence[str] | None = None,
        wrap: Callable[[int, list[str]], list[str]] | None = None,
        tls: bool = True,
    ) -> None:
        """`hosts` gives each node its own address (default: all on `host`); `wrap`
        turns a node's command into the one to run (e.g. inside a network namespace).
        With `tls` (the default) the nodes serve mutual TLS with certificates made in
        `base_dir/tls` on first start (`security` is the local client's); without it they
        run --insecure."""
        hosts = list(hosts) if hosts is not None else [host] * size
        ports = list(ports) if ports is not None else (
            free_ports(size, host) if hosts == [host] * size else [7001] * size)
        assert len(ports) == size and len(hosts) == size
        self.base_dir = base_dir
        self.extra_args = list(extra_args)
        self.env = env
        self.wrap = wrap
        self.tls = tls
        self._certs: LocalCerts | None = None
        self._security: Security | None = None
        self.nodes = [
            LocalNode(f"n{i + 1}", hosts[i], ports[i], base_dir / f"n{i + 1}",
                      base_dir / f"n{i + 1}.log")
            for i in range(size)
        ]

    @property
    def cluster_flag(self) -> str:
        return ",".join(f"{n.node_id}={n.address}" for n in self.nodes)

    @property
    def addresses(self) -> list[str]:
        return [n.address for n in self.nodes]

    @property
    def tls_dir(self) -> pathlib.Path:
        return self.base_dir / "tls"

    @property
    def certs(self) -> LocalCerts | None:
        """The cluster's certificates (made on first use), or None when it runs --insecure."""
        if self.tls and self._certs is None:
            self.base_dir.mkdir(parents=True, exist_ok=True)
            self._certs = ensure_local_certs(self.tls_dir,
                                             ClusterConfig.parse(self.cluster_flag))
        return self._certs

    @property
    def security(self) -> Security:
        """How a client of this cluster dials it (the local certificate: every role)."""
        if self._security is None:
            certs = self.certs
            self._security = INSECURE if certs is None else certs.security
        return self._security

    def client_flags(self) -> list[str]:
        """How a `ledger` or `teller` child process dials this cluster: flags, not the
        LEDGER_* variables, which the parent's own environment could contradict."""
        certs = self.certs
        if certs is None:
            return ["--insecure"]
        return ["--ca", str(certs.ca_path), "--cert", str(certs.certificate_path),
                "--key", str(certs.key_path)]

    @property
    def client_env(self) -> dict[str, str]:
        """The LEDGER_* variables a client process of this cluster needs."""
        certs = self.certs
        return {ENV_INSECURE: "1"} if certs is None else certs.environment

    def security_flags(self) -> list[str]:
        """What `ledger serve` and `ledger recover` are told about TLS."""
        return ["--insecure"] if self.certs is None else ["--tls-dir", str(self.tls_dir)]

    def command(self, index: int) -> list[str]:
        node = self.nodes[index]
        command = [sys.executable, "-m", "ledger", "serve", "--node-id", node.node_id,
                   "--data-dir", str(node.data_dir), "--cluster", self.cluster_flag,
                   *self.security_flags(), *self.extra_args]
        return self.wrap(index, command) if self.wrap is not None else command

    # ---------------------------------------------------------------- lifecycle

    def start(self, wait: bool = True) -> ProcessCluster:
        self.base_dir.mkdir(parents=True, exist_ok=True)
        for index in range(len(self.nodes)):
            self.start_node(index, wait=False)
        if wait:
            for index in range(len(self.nodes)):
                self.wait_ready(index)
        return self

    def start_node(self, index: int, wait: bool = True) -> None:
        node = self.nodes[index]
        assert not node.running, f"{node.node_id} is already running"
        env = dict(os.environ if self.env is None else self.env)
        with open(node.log_path, "ab") as log:
            node.process = subprocess.Popen(
                self.command(index), stdout=log, stderr=subprocess.STDOUT, env=env,
                start_new_session=True,  # a Ctrl-C at the terminal reaches only the parent
            )
        node.paused = False
        if wait:
            self.wait_ready(index)

    def wait_ready(self, index: int, timeout_s: float = READY_TIMEOUT_S) -> None:
        node = self.nodes[index]
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not node.running:
                raise RuntimeError(f"{node.node_id} exited: {self.log_tail(index)}")
            if node_serving(node.address, self.security):
                return
            time.sleep(0.05)
        raise TimeoutError(f"{node.node_id} not serving after {timeout_s}s: "
                           f"{self.log_tail(index)}")

    def kill(self, index: int) -> None:
        """SIGKILL: the process dies at once, mid-write if it was writing."""
        self._signal(index, signal.SIGKILL)
        self._reap(index)

    def terminate(self, index: int, timeout_s: float = 15.0) -> int:
        """SIGTERM and wait: a clean shutdown. Returns the exit code."""
        node = self.nodes[index]
        if node.paused:
            self.resume(index)
        self._signal(index, signal.SIGTERM)
        assert node.process is not None
        try:
            code = node.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.kill(index)
            raise
        node.process = None
        return code

    def pause(self, index: int) -> None:
        self._signal(index, signal.SIGSTOP)
        self.nodes[index].paused = True

    def resume(self, index: int) -> None:
        self._signal(index, signal.SIGCONT)
        self.nodes[index].paused = False

    def restart(self, index: int, wait: bool = True) -> None:
        if self.nodes[index].running:
            self.kill(index)
        self.start_node(index, wait=wait)

    def stop(self) -> None:
        for index, node in enumerate(self.nodes):
            if node.running:
                with contextlib.suppress(Exception):
                    self.terminate(index, timeout_s=10)
            if node.running:
                self.kill(index)

    def __enter__(self) -> ProcessCluster:
        try:
            return self.start()
        except BaseException:
            self.stop()  # a node that did not come up must not leave the others running
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ helpers

    def _signal(self, index: int, signum: int) -> None:
        process = self.nodes[index].process
        if process is not None and process.poll() is None:
            process.send_signal(signum)

    def _reap(self, index: int) -> None:
        node = self.nodes[index]
        if node.process is not None:
            node.process.wait()
            node.process = None
            node.paused = False

    def log_tail(self, index: int, lines: int = 20) -> str:
        try:
            text = self.nodes[index].log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])
