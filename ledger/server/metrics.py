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

import prometheus_client
from prometheus_client import start_http_server
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector, CollectorRegistry

from ledger.node.cluster import parse_address
from ledger.node.counters import Histogram

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
    "phase_one_rounds": ("ledger_paxos_phase1_rounds_total",
                         "Prepares broadcast: Phase 1 rounds this node started."),
    "fast_path_proposals": ("ledger_paxos_fast_path_proposals_total",
                            "Proposals sent straight to Phase 2 under a range promise "
                            "(their share of ledger_paxos_proposals_total is the fast path's)."),
    "backoffs": ("ledger_paxos_backoffs_total",
                 "Rounds refused by a higher ballot and retried after a random delay."),
    "takeovers": ("ledger_paxos_takeovers_total",
                  "Phase 1 on a slot another proposer left undecided (settling it)."),
    "resends": ("ledger_paxos_resends_total",
                "Prepares or Accepts sent again to nodes that did not answer in time."),
    "leaderships_won": ("ledger_paxos_leaderships_won_total",
                        "Range promises won: this node became an account's leader."),
    "leaderships_lost": ("ledger_paxos_leaderships_lost_total",
                         "Range promises ended by a higher ballot (another node took over)."),
    "catch_up_requests": ("ledger_paxos_catch_up_requests_total",
                          "Requests to a peer for chosen values this node lacks."),
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
    "held_entries": ("ledger_log_entries_held",
                     "Chosen entries held back until another account's slot is applied "
                     "(a credit before its debit): the applied state stays a consistent cut."),
}
#: per-peer value (key PREFIX:NODE_INDEX) -> (metric name, help, kind, scale).
PEER_SERIES = {
    "peer_lag": ("ledger_peer_lag_log_entries",
                 "Log entries chosen in the accounts this node leads beyond how far the peer "
                 "holds them, from its promise and votes (which report its chosen prefix): "
                 "how far behind it is. Rises while it is down, falls once it has caught up "
                 "and votes again (on an idle account, at its next write).", "gauge", 1.0),
    "peer_silent_ms": ("ledger_peer_silence_seconds",
                       "Time since the peer was last heard from (any Paxos message).",
                       "gauge", 0.001),
    "peer_stream_up": ("ledger_peer_stream_up",
                       "1 while this node's message stream to the peer is open.", "gauge", 1.0),
    "peer_streams_opened": ("ledger_peer_streams_opened_total",
                            "Message streams opened to the peer (a rising count: a flapping "
                            "link).", "counter", 1.0),
    "peer_unanswered": ("ledger_peer_requests_unanswered",
                        "Requests written to the peer's stream and not answered yet.",
                        "gauge", 1.0),
    "peer_outbox": ("ledger_peer_outbox_messages",
                    "Messages waiting to be sent to the peer.", "gauge", 1.0),
}
#: histogram kept by the node -> (metric name, help).
HISTOGRAMS = {
    "flush_seconds": ("ledger_storage_flush_seconds",
                      "How long each group commit took (one commit and one fsync, on the "
                      "writer thread), from its start until the node's loop saw it end."),
    "flush_writes": ("ledger_storage_flush_writes",
                     "Writes each group commit made durable (its batch size)."),
}
#: Request durations' buckets: the fast path's ~1 ms up to a client's 10 s deadline.
DURATION_BUCKETS_S = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                      2.5, 5.0, 10.0)
RECEIVED_PREFIX = "received_"  # messages handled, by kind: one labelled counter
WRITES_PREFIX = "writes:"  # writes answered, as writes:KIND:OUTCOME
BOUND_PREFIX = "bound:"  # memory bounds, as bound:NAME:used and bound:NAME:limit


def bound_values(bounds: dict[str, tuple[int, int]]) -> dict[str, int]:
    """Memory bounds as counter-view entries: (used, limit) by name, flattened."""
    values: dict[str, int] = {}
    for name, (used, limit) in bounds.items():
        values[f"{BOUND_PREFIX}{name}:used"] = used
        values[f"{BOUND_PREFIX}{name}:limit"] = limit
    return values


class NodeCollector(Collector):
    """The node's counters as metric families, read when Prometheus scrapes.

    `peers` names the members by node index (the per-peer series' label); the
    node's histograms come as `Histogram`s copied on the node's loop.
    """

    def __init__(self, counters: Callable[[], dict[str, int]],
                 histograms: Callable[[], dict[str, Histogram]], peers: list[str]) -> None:
        self._counters = counters
        self._histograms = histograms
        self._peers = peers

    def collect(self) -> Iterator[Metric]:
        values = self._counters()
        yield from self._per_peer(values)
        yield from self._bounds(values)
        for key, histogram in self._histograms().items():
            name, documentation = HISTOGRAMS[key]
            buckets, total = histogram.cumulative()
            yield HistogramMetricFamily(
                name, documentation, sum_value=total,
                buckets=[("+Inf" if bound == float("inf") else repr(float(bound)), count)
                         for bound, count in buckets])
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

    def _per_peer(self, values: dict[str, int]) -> Iterator[Metric]:
        for prefix, (name, documentation, kind, scale) in PEER_SERIES.items():
            family: CounterMetricFamily | GaugeMetricFamily
            if kind == "counter":
                family = CounterMetricFamily(name.removesuffix("_total"), documentation,
                                             labels=["peer"])
            else:
                family = GaugeMetricFamily(name, documentation, labels=["peer"])
            for node, peer in enumerate(self._peers):
                value = values.get(f"{prefix}:{node}")
                if value is not None:
                    family.add_metric([peer], value * scale)
            yield family

    def _bounds(self, values: dict[str, int]) -> Iterator[Metric]:
        used = GaugeMetricFamily("ledger_memory_bound_used",
                                 "What each bounded in-memory table holds now.", labels=["bound"])
        limit = GaugeMetricFamily("ledger_memory_bound_limit",
                                  "The bound of each in-memory table.", labels=["bound"])
        for key, value in sorted(values.items()):
            if key.startswith(BOUND_PREFIX):
                bound, _, which = key.removeprefix(BOUND_PREFIX).rpartition(":")
                (used if which == "used" else limit).add_metric([bound], value)
        yield used
        yield limit


@dataclass(frozen=True)
class MetricsServer:
    stop: Callable[[], None]  # stops serving (joins the thread)
    timed: Callable[[str, float], None]  # records a call: its method, how long it took


def serve_metrics(listen: str, counters: Callable[[], dict[str, int]],
                  histograms: Callable[[], dict[str, Histogram]], peers: list[str]
                  ) -> MetricsServer:
    """Serve `/metrics` on `listen` (HOST:PORT) from a thread."""
    host, port = parse_address(listen)
    host = host.removeprefix("[").removesuffix("]")  # an IPv6 host, as a socket wants it
    registry = CollectorRegistry()
    registry.register(NodeCollector(counters, histograms, peers))
    durations = prometheus_client.Histogram(
        "ledger_request_duration_seconds",
        "How long unary calls (and write stream batches, as SubmitStream) took at this "
        "node, from admission to answer.", ["method"], buckets=DURATION_BUCKETS_S,
        registry=registry)
    server, thread = start_http_server(port, addr=host, registry=registry)

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join()

    return MetricsServer(stop, lambda method, seconds: durations.labels(method).observe(seconds))
