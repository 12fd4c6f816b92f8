"""The ledger as operators watch it, for `ledger bench --vs-metrics`: what watching
costs. Every node serves /metrics, scraped every second, and a watcher does what an
open `ledger dashboard` page does every second: one page of account statuses and a
health check from each node, and the Paxos trace of one account the load writes to."""

from __future__ import annotations

import contextlib
import pathlib
import threading
import urllib.request

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ledger.bench.load import account_name
from ledger.tools.localcluster import ProcessCluster, free_ports
from ledger.v1 import replica_pb2 as pb
from ledger.v1 import replica_pb2_grpc as pb_grpc

WATCH_INTERVAL_S = 1.0  # far more often than Prometheus' usual 15 s: an upper bound
TRACED_ACCOUNT = account_name(0)  # every scenario writes to it
STATUS_PAGE = 50  # accounts per status page, as the dashboard asks
CALL_TIMEOUT_S = 5.0


class Watcher:
    """Scrapes every node and polls it as the dashboard does, once a second, until
    stopped."""

    def __init__(self, cluster: ProcessCluster, metrics_urls: list[str]) -> None:
        self._urls = metrics_urls
        self._channels = [cluster.security.channel(a) for a in cluster.addresses]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="watcher")
        self.looks = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        for channel in self._channels:
            channel.close()

    def _run(self) -> None:
        admins = [pb_grpc.AdminStub(c) for c in self._channels]
        healths = [health_pb2_grpc.HealthStub(c) for c in self._channels]
        while not self._stop.wait(WATCH_INTERVAL_S):
            for url in self._urls:
                with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=5) as r:
                    r.read()
            for admin, health in zip(admins, healths, strict=True):
                with contextlib.suppress(grpc.RpcError):
                    admin.Status(pb.StatusRequest(limit=STATUS_PAGE), timeout=CALL_TIMEOUT_S)
                    health.Check(health_pb2.HealthCheckRequest(), timeout=CALL_TIMEOUT_S)
                    admin.Trace(pb.TraceRequest(account=TRACED_ACCOUNT, start=True),
                                timeout=CALL_TIMEOUT_S)
            self.looks += 1


def start_observed(stack: contextlib.ExitStack, base: pathlib.Path) -> ProcessCluster:
    """A TLS cluster serving metrics, scraped and watched every second."""
    ports = free_ports(3)

    def with_metrics(index: int, command: list[str]) -> list[str]:
        return [*command, "--metrics-listen", f"127.0.0.1:{ports[index]}"]

    cluster = stack.enter_context(ProcessCluster(base, 3, wrap=with_metrics))
    watcher = Watcher(cluster, [f"http://127.0.0.1:{port}/metrics" for port in ports])
    watcher.start()
    stack.callback(watcher.stop)
    return cluster
