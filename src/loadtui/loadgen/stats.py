"""The stats maths, in one place: per-second deltas of Locust's cumulative counters and bucketed percentiles.

Locust keeps, per endpoint, cumulative `num_requests`, `num_failures` and a histogram `response_times`
{bucket_ms: count}, where buckets are whole milliseconds under 100 ms and 2 significant digits above (147 → 150).
Its own "current" figures average a 10-second window; loadtui diffs the cumulative values between two seconds so
that a stop shows zero within a second (DESIGN 4.1). Pure functions, no Locust import: the load generator child and
the tests both use them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

PERCENTILES: tuple[tuple[str, float], ...] = (("p50", 0.50), ("p95", 0.95), ("p99", 0.99))


@dataclass(frozen=True)
class Counters:
    """Cumulative figures of one endpoint (or the total) at one moment."""

    requests: int
    failures: int
    buckets: Mapping[int, int]
    """Response-time histogram {bucket_ms: count}, cumulative."""


def diff_buckets(latest: Mapping[int, int], old: Mapping[int, int]) -> dict[int, int]:
    """Histogram of what happened between `old` and `latest` (only positive counts)."""
    out: dict[int, int] = {}
    for bucket, count in latest.items():
        delta = count - old.get(bucket, 0)
        if delta > 0:
            out[bucket] = delta
    return out


def percentile(buckets: Mapping[int, int], fraction: float) -> float | None:
    """The `fraction` percentile of a histogram (the bucket value where the cumulative count reaches it).

    None for an empty histogram. Matches Locust's `calculate_response_time_percentile` on the same data.
    """
    total = sum(buckets.values())
    if total <= 0:
        return None
    # Locust walks from the top: the smallest bucket whose count-from-above exceeds (1 - fraction) of the total.
    processed = 0
    threshold = total - int(total * fraction)
    for bucket in sorted(buckets, reverse=True):
        processed += buckets[bucket]
        if processed >= threshold:
            return float(bucket)
    return float(min(buckets))


def latency_summary(buckets: Mapping[int, int]) -> dict[str, float | None]:
    """p50/p95/p99/max of a histogram, in ms (None when empty)."""
    out: dict[str, float | None] = {name: percentile(buckets, frac) for name, frac in PERCENTILES}
    out["max"] = float(max(buckets)) if buckets else None
    return out


@dataclass(frozen=True)
class Delta:
    """What happened in one interval, for one endpoint or the total."""

    requests: int
    failures: int
    buckets: dict[int, int]


def delta(latest: Counters, previous: Counters | None) -> Delta:
    """Requests, failures and histogram between two snapshots.

    Counters that went down mean Locust cleared its stats (a `start` after a `stop`): treat it as a reset, i.e.
    count everything since the reset. A histogram bucket that shrank is a reset too, even when the request count
    since the reset already exceeds the one before it (otherwise the count and the histogram would disagree).
    """
    if previous is None or was_reset(latest, previous):
        return Delta(latest.requests, latest.failures, {k: v for k, v in latest.buckets.items() if v > 0})
    return Delta(
        latest.requests - previous.requests,
        latest.failures - previous.failures,
        diff_buckets(latest.buckets, previous.buckets),
    )


def was_reset(latest: Counters, previous: Counters) -> bool:
    """True when cumulative counters went down: they were cleared between the two snapshots."""
    if latest.requests < previous.requests or latest.failures < previous.failures:
        return True
    return any(latest.buckets.get(bucket, 0) < count for bucket, count in previous.buckets.items())


def littles_law_concurrency(rps: float, latency_ms: float | None) -> float | None:
    """Requests in flight implied by throughput and mean latency (L = λ·W)."""
    if latency_ms is None:
        return None
    return rps * latency_ms / 1000.0
