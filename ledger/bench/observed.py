"""The ledger as operators run it: every node serving /metrics, scraped every second,
and one account traced (as `ledger dashboard` does for the account it shows), for
`ledger bench --vs-metrics`: what watching the cluster costs."""

from __future__ import annotations

import contextlib
import pathlib
import threading
import urllib.request

from ledger.tools.localcluster import ProcessCluster, free_ports
from ledger.v1 import replica_pb2 as pb
from ledger.v1 import replica_pb2_grpc as pb_grpc

SCRAPE_INTERVAL_S = 1.0  # far more often than Prometheus' usual 15 s: an upper bound
TRACED_ACCOUNT = "bench-watched"  # traced on every node, as the dashboard would


class Scraper:
    """Reads every node's /metrics once a second until stopped, as Prometheus would."""

    def __init__(self, urls: list[str]) -> None:
        self._urls = urls
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="scraper")
        self.scrapes = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(SCRAPE_INTERVAL_S):
            for url in self._urls:
                with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=5) as r:
                    r.read()
                    self.scrapes += 1


def start_observed(stack: contextlib.ExitStack, base: pathlib.Path) -> ProcessCluster:
    """A TLS cluster serving metrics (scraped) with one account traced on every node."""
    ports = free_ports(3)

    def with_metrics(index: int, command: list[str]) -> list[str]:
        return [*command, "--metrics-listen", f"127.0.0.1:{ports[index]}"]

    cluster = stack.enter_context(ProcessCluster(base, 3, wrap=with_metrics))
    for address in cluster.addresses:
        with cluster.security.channel(address) as channel:
            pb_grpc.AdminStub(channel).Trace(
                pb.TraceRequest(account=TRACED_ACCOUNT, start=True), timeout=10)
    scraper = Scraper([f"http://127.0.0.1:{port}/metrics" for port in ports])
    scraper.start()
    stack.callback(scraper.stop)
    return cluster
