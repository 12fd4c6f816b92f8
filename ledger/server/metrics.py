"""Prometheus metrics: `ledger serve --metrics-listen HOST:PORT` serves `/metrics`.

Read at scrape time from the counters the node keeps anyway (the same ones
`Admin.Status` reports), so serving metrics costs the write path nothing. No label
names an account, a principal or a memo: a million accounts must not make a million
series, and a metric must not leak what only a teller may read. Names and units
follow Prometheus' conventions (`_total` for counters, base units).

Plaintext HTTP: bind it to 127.0.0.1 or a private interface (see README).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from prometheus_client import Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from ledger.node.cluster import parse_address

#: counter in the node's counters -> (metric name, help). Every one only ever grows.
COUNTERS = {
    "turns": ("ledger_driver_turns_total", "Turns of the node driver (one batch of work each)."),
    "syncs": ("ledger_storage_syncs_total", "Durable commits (each one fsync for a group)."),
    "messages": ("ledger_paxos_messages_total", "Paxos messages handled by the core."),
    "proposals": ("ledger_paxos_proposals_total", "Proposals this node started."),
    "applied": ("ledger_log_entries_applied_total", "Chosen log entries applied."),
    "alarms": ("ledger_alarms_total", "Accounts quarantined on an alarm."),
    "repaired_values": ("ledger_repaired_values_total",
                        "Damaged chosen values put back from a peer's copy."),
    "peer_calls": ("ledger_peer_calls_total", "Calls made to peers."),
    "peer_calls_failed": ("ledger_peer_calls_failed_total", "Calls to peers that failed."),
    "forwarded_batches": ("ledger_forwarded_batches_total",
                          "Client write batches forwarded to an account's leader."),
    "peer_messages_dropped": ("ledger_peer_messages_dropped_total",
                              "Malformed or out-of-bounds peer messages dropped."),
    "client_calls_refused_busy": ("ledger_client_calls_refused_busy_total",
                                  "Client calls refused at the door: too many in flight."),
    "calls_unauthenticated": ("ledger_calls_unauthenticated_total",
                              "Calls refused: no valid certificate."),
    "calls_denied": ("ledger_calls_denied_total", "Calls refused: no role for the method."),
}
#: gauge in the node's counters -> (metric name, help): how things stand now.
GAUGES = {
    "unreadable_accounts": ("ledger_accounts_unreadable",
                            "Accounts quarantined because a record is damaged on disk."),
    "recovering_accounts": ("ledger_accounts_recovering",
                            "Accounts fenced by `ledger recover`, catching up before they vote."),
    "waiting_for_members": ("ledger_waiting_for_members",
                            "1 while the node waits for the members to admit its data."),
    "marked_for_recovery": ("ledger_marked_for_recovery",
                            "1 when the next start must go through `ledger recover`."),
}
#: Request durations' buckets: the fast path's ~1 ms up to a client's 10 s deadline.
DURATION_BUCKETS_S = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                      2.5, 5.0, 10.0)
RECEIVED_PREFIX = "received_"  # messages handled, by kind: one labelled counter
WRITES_PREFIX = "writes:"  # writes answered, as writes:KIND:OUTCOME


class NodeCollector(Collector):
    """The node's counters as metric families, read when Prometheus scrapes."""

    def __init__(self, counters: Callable[[], dict[str, int]]) -> None:
        self._counters = counters

    def collect(self) -> Iterator[Metric]:
        values = self._counters()
        for key, (name, documentation) in COUNTERS.items():
            # (The client library appends _total to a counter family's name itself.)
            yield CounterMetricFamily(name.removesuffix("_total"), documentation,
                                      value=values.get(key, 0))
        for key, (name, documentation) in GAUGES.items():
            yield GaugeMetricFamily(name, documentation, value=values.get(key, 0))
        by_kind = CounterMetricFamily("ledger_paxos_messages_received",
                                      "Paxos messages handled, by kind.", labels=["kind"])
        for key, count in sorted(values.items()):
            if key.startswith(RECEIVED_PREFIX):
                by_kind.add_metric([key.removeprefix(RECEIVED_PREFIX)], count)
        yield by_kind
        writes = CounterMetricFamily(
            "ledger_writes", "Writes this node answered, by kind and outcome (applied, "
            "refused, duplicate).", labels=["kind", "outcome"])
        for key, count in sorted(values.items()):
            if key.startswith(WRITES_PREFIX):
                kind, _, outcome = key.removeprefix(WRITES_PREFIX).partition(":")
                writes.add_metric([kind, outcome], count)
        yield writes


@dataclass(frozen=True)
class MetricsServer:
    stop: Callable[[], None]  # stops serving (joins the thread)
    timed: Callable[[str, float], None]  # records a call: its method, how long it took


def serve_metrics(listen: str, counters: Callable[[], dict[str, int]]) -> MetricsServer:
    """Serve `/metrics` on `listen` (HOST:PORT) from a thread."""
    host, port = parse_address(listen)
    host = host.removeprefix("[").removesuffix("]")  # an IPv6 host, as a socket wants it
    registry = CollectorRegistry()
    registry.register(NodeCollector(counters))
    durations = Histogram("ledger_request_duration_seconds",
                          "How long unary calls took at this node, from admission to answer.",
                          ["method"], buckets=DURATION_BUCKETS_S, registry=registry)
    server, thread = start_http_server(port, addr=host, registry=registry)

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join()

    return MetricsServer(stop, lambda method, seconds: durations.labels(method).observe(seconds))
