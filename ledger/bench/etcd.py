"""etcd for the benchmark: Debian's etcd-server on loopback, its protos compiled on the spot.

Nothing of etcd is committed: `ensure_installed` installs Debian's `etcd-server` and
`golang-etcd-server-dev` (as root) if they are missing, and `compile_protos` turns
the .proto files that package ships into Python modules in a temporary directory.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys
import time
from types import ModuleType

from ledger.tools.localcluster import free_ports

GOCODE = pathlib.Path("/usr/share/gocode/src")
ETCD_SOURCE = GOCODE / "go.etcd.io" / "etcd"
GATEWAY = GOCODE / "github.com" / "grpc-ecosystem" / "grpc-gateway"
INCLUDES = [GOCODE / "github.com" / "gogo" / "protobuf", GATEWAY / "third_party" / "googleapis"]
PROTOS = ["etcd/etcdserver/etcdserverpb/rpc.proto", "etcd/mvcc/mvccpb/kv.proto",
          "etcd/auth/authpb/auth.proto", "gogoproto/gogo.proto", "google/api/annotations.proto",
          "google/api/http.proto"]


class EtcdUnavailable(RuntimeError):
    """etcd cannot be run here; the message says what is missing."""


def ensure_installed() -> None:
    if shutil.which("etcd") and (ETCD_SOURCE / "etcdserver").exists():
        return
    if os.geteuid() != 0:
        raise EtcdUnavailable("etcd is not installed and installing it needs root: "
                              "apt-get install etcd-server golang-etcd-server-dev")
    result = subprocess.run(["apt-get", "install", "-y", "etcd-server",
                             "golang-etcd-server-dev"], capture_output=True, text=True)
    if result.returncode != 0:
        raise EtcdUnavailable(f"installing etcd failed: {result.stderr[-500:]}")


def compile_protos(out_dir: pathlib.Path) -> pathlib.Path:
    """Generate etcd's Python gRPC modules under `out_dir`; returns the import root."""
    import importlib.resources

    from grpc_tools import protoc

    well_known = importlib.resources.files("grpc_tools") / "_proto"  # descriptor.proto & co
    include = out_dir / "include"
    generated = out_dir / "python"
    include.mkdir(parents=True, exist_ok=True)
    generated.mkdir(parents=True, exist_ok=True)
    link = include / "etcd"
    if not link.exists():
        link.symlink_to(ETCD_SOURCE)
    args = ["protoc", f"-I{include}", *(f"-I{i}" for i in INCLUDES), f"-I{well_known}",
            f"--python_out={generated}", f"--grpc_python_out={generated}",
            *PROTOS]  # names as imports spell them, found through the -I paths
    if protoc.main(args) != 0:
        raise EtcdUnavailable("compiling etcd's protos failed")
    return generated


def import_rpc(generated: pathlib.Path) -> tuple[ModuleType, ModuleType]:
    """etcd's rpc_pb2 and rpc_pb2_grpc, from the compiled tree."""
    if str(generated) not in sys.path:
        sys.path.insert(0, str(generated))
    from etcd.etcdserver.etcdserverpb import rpc_pb2, rpc_pb2_grpc  # type: ignore[import-not-found]

    return rpc_pb2, rpc_pb2_grpc


class EtcdCluster:
    """A 3-member etcd cluster on loopback, fsync on (etcd's default)."""

    def __init__(self, base_dir: pathlib.Path, size: int = 3) -> None:
        ports = free_ports(2 * size)
        self.client_ports = ports[:size]
        self.peer_ports = ports[size:]
        self.base_dir = base_dir
        self.names = [f"e{i + 1}" for i in range(size)]
        self.processes: list[subprocess.Popen[bytes]] = []

    @property
    def addresses(self) -> list[str]:
        return [f"127.0.0.1:{port}" for port in self.client_ports]

    def start(self, generated: pathlib.Path, timeout_s: float = 60.0) -> None:
        initial = ",".join(f"{n}=http://127.0.0.1:{p}"
                           for n, p in zip(self.names, self.peer_ports, strict=True))
        for name, client, peer in zip(self.names, self.client_ports, self.peer_ports,
                                      strict=True):
            data = self.base_dir / name
            data.mkdir(parents=True, exist_ok=True)
            log = open(self.base_dir / f"{name}.log", "ab")  # noqa: SIM115 (lives with the process)
            self.processes.append(subprocess.Popen(
                ["etcd", "--name", name, "--data-dir", str(data),
                 "--listen-client-urls", f"http://127.0.0.1:{client}",
                 "--advertise-client-urls", f"http://127.0.0.1:{client}",
                 "--listen-peer-urls", f"http://127.0.0.1:{peer}",
                 "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
                 "--initial-cluster", initial, "--initial-cluster-state", "new",
                 "--logger", "zap", "--log-level", "error"],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
        self._wait_ready(generated, timeout_s)

    def _wait_ready(self, generated: pathlib.Path, timeout_s: float) -> None:
        import grpc

        rpc_pb2, rpc_pb2_grpc = import_rpc(generated)
        deadline = time.monotonic() + timeout_s
        for address in self.addresses:
            while True:
                try:
                    with grpc.insecure_channel(address) as channel:
                        rpc_pb2_grpc.KVStub(channel).Put(
                            rpc_pb2.PutRequest(key=b"ready", value=b"1"), timeout=2)
                    break
                except grpc.RpcError:
                    if time.monotonic() > deadline:
                        raise EtcdUnavailable(f"etcd at {address} did not come up") from None
                    time.sleep(0.2)

    def pids(self) -> list[int]:
        return [p.pid for p in self.processes]

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
