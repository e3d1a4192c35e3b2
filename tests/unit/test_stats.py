"""The stats maths: percentiles of Locust-style histograms and per-second deltas."""

from __future__ import annotations

import pytest

from loadtui.loadgen import stats


@pytest.mark.parametrize(
    ("buckets", "fraction", "expected"),
    [
        ({}, 0.5, None),
        ({10: 1}, 0.5, 10.0),
        ({10: 1}, 0.99, 10.0),
        ({1: 50, 100: 50}, 0.5, 100.0),  # Locust reports the upper bucket at an exact split
        ({1: 50, 100: 50}, 0.49, 1.0),
        ({5: 90, 40: 9, 150: 1}, 0.95, 40.0),
        ({5: 90, 40: 9, 150: 1}, 0.99, 150.0),
        ({5: 90, 40: 9, 150: 1}, 1.0, 150.0),
    ],
)
def test_percentile(buckets: dict[int, int], fraction: float, expected: float | None) -> None:
    assert stats.percentile(buckets, fraction) == expected


def test_percentile_matches_locust_on_a_wide_histogram() -> None:
    # Locust's calculate_response_time_percentile, re-stated: walking down from the top, the first bucket where the
    # processed count reaches total - int(total * percent). Checked against it by hand for these values.
    buckets = {i: (i % 7) + 1 for i in range(1, 100)} | {110: 5, 250: 2, 1200: 1}
    total = sum(buckets.values())
    for fraction in (0.5, 0.9, 0.95, 0.99):
        threshold = total - int(total * fraction)
        processed = 0
        for b in sorted(buckets, reverse=True):
            processed += buckets[b]
            if processed >= threshold:
                want = float(b)
                break
        assert stats.percentile(buckets, fraction) == want


def test_delta_counts_only_the_interval() -> None:
    old = stats.Counters(100, 2, {10: 60, 20: 40})
    new = stats.Counters(150, 3, {10: 80, 20: 60, 30: 10})
    d = stats.delta(new, old)
    assert (d.requests, d.failures) == (50, 1)
    assert d.buckets == {10: 20, 20: 20, 30: 10}


def test_delta_treats_a_drop_as_a_reset() -> None:
    # Locust clears its stats on start-after-stop: everything since the reset is the interval.
    old = stats.Counters(1000, 5, {10: 1000})
    new = stats.Counters(30, 0, {12: 30})
    d = stats.delta(new, old)
    assert (d.requests, d.failures, d.buckets) == (30, 0, {12: 30})


def test_latency_summary_and_littles_law() -> None:
    summary = stats.latency_summary({10: 98, 200: 2})
    assert summary == {"p50": 10.0, "p95": 10.0, "p99": 200.0, "max": 200.0}
    assert stats.latency_summary({})["p50"] is None
    assert stats.littles_law_concurrency(500, 200) == pytest.approx(100)
    assert stats.littles_law_concurrency(500, None) is None
