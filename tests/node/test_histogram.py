"""The node's histograms: a value on a bound counts in that bound's bucket (Prometheus'
"le"), and the cumulative form Prometheus reads adds up to every observation."""

from __future__ import annotations

from ledger.node.counters import Histogram


def test_values_fall_in_the_first_bucket_whose_bound_they_do_not_pass() -> None:
    histogram = Histogram((1, 10, 100))
    for value in (0, 1, 2, 10, 11, 100, 101, 5_000):
        histogram.observe(value)
    assert histogram.counts == [2, 2, 2, 2]
    buckets, total = histogram.cumulative()
    assert buckets == [(1, 2), (10, 4), (100, 6), (float("inf"), 8)]
    assert total == 0 + 1 + 2 + 10 + 11 + 100 + 101 + 5_000


def test_a_copy_keeps_its_counts_and_moves_on_its_own() -> None:
    histogram = Histogram((0.5,))
    histogram.observe(0.25)
    copy = Histogram(histogram.bounds, list(histogram.counts), histogram.total)
    histogram.observe(1.0)
    assert copy.counts == [1, 0] and copy.total == 0.25
    assert histogram.counts == [1, 1]
