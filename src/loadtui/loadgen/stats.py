"""The stats maths, in one place: per-second deltas of Locust's cumulative counters and bucketed percentiles.

Locust keeps, per endpoint, cumulative `num_requests`, `num_failures` and a histogram `response_times`
{bucket_ms: count}, where buckets are whole milliseconds under 100 ms and 2 significant digits above (147 → 150).
Its own "current" figures average a 10-second window; loadtui diffs the cumulative values between two seconds so
that a stop shows zero within a second (DESIGN 4.1). Pure functions, no Locust import: the load generator child and
the tests both use them.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeGuard

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


INTERVAL_KEY = "loadtui_interval"
"""What a worker adds to each report: the seconds since its last one, on its own clock."""


@dataclass(frozen=True)
class Rates:
    """Requests and failures a second."""

    requests: float = 0.0
    failures: float = 0.0


@dataclass(frozen=True)
class WorkerRates:
    """The workers' rates summed: the total and each endpoint's, by (name, method)."""

    total: Rates
    endpoints: dict[tuple[str, str], Rates] = field(default_factory=dict)


def nonnegative(value: object) -> TypeGuard[int | float]:
    """A finite number of 0 or more (not a flag): what a count or a rate in a worker's report must be."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value >= 0


def _count(value: Any) -> float:
    """A report's count, or 0 for anything that is not a `nonnegative` number."""
    return float(value) if nonnegative(value) else 0.0


class WorkerSeconds:
    """A master's requests a second from its workers' own seconds.

    Workers report on their own clocks, so diffing the master's totals once a second counts one worker's report
    twice in one second and not at all in the next, and misses a worker's last report at the end of a run: a run
    at 150 req/s over two workers read 75 in such a second. Each worker's last report divided by the interval that
    worker measured is the rate it ran at; summed over the live workers, it is the load's rate every second.
    """

    def __init__(self) -> None:
        self.latest: dict[str, WorkerRates | None] = {}
        """Each worker's rates from its last report, None for a worker that does not say its interval."""

    def add(self, client_id: str, data: Mapping[str, Any]) -> None:
        """A worker's report (Locust's `stats_total` and `stats`, and the interval the worker adds); Locust's
        `worker_report` event calls its listeners with these keywords."""
        interval = _count(data.get(INTERVAL_KEY))
        if interval <= 0:
            self.latest[client_id] = None
            return

        def rates(entry: Any) -> Rates:
            if not isinstance(entry, Mapping):
                return Rates()
            return Rates(_count(entry.get("num_requests")) / interval, _count(entry.get("num_failures")) / interval)

        entries = data.get("stats")
        endpoints = {
            (str(e.get("name")), str(e.get("method") or "")): rates(e)
            for e in (entries if isinstance(entries, list) else [])
            if isinstance(e, Mapping)
        }
        self.latest[client_id] = WorkerRates(rates(data.get("stats_total")), endpoints)

    def rates(self, live: Collection[str]) -> WorkerRates | None:
        """The live workers' rates summed; None before any report or when one of them does not say its interval."""
        parts = [rates for client, rates in self.latest.items() if client in live]
        known = [part for part in parts if part is not None]
        if not known or len(known) < len(parts):
            return None
        endpoints: dict[tuple[str, str], Rates] = {}
        for part in known:
            for key, r in part.endpoints.items():
                seen = endpoints.get(key, Rates())
                endpoints[key] = Rates(seen.requests + r.requests, seen.failures + r.failures)
        total = Rates(sum(p.total.requests for p in known), sum(p.total.failures for p in known))
        return WorkerRates(total, endpoints)
