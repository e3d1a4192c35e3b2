"""Locust's cumulative stats → one record per second. Pure: no Locust import, the clock is injectable.

The runner child calls :meth:`Sampler.sample` once a second with Locust's `RequestStats`; the tests call it with
plain objects of the same shape. Locust clears its stats on a `start` after a `stop` (`clear_all` makes a new
`total` entry, `reset_all` restarts its `start_time`); the sampler notices either and counts everything since the
reset as the new interval, for requests, histograms and errors alike (DESIGN 4.1). Each record carries the second's
whole histogram too (`histogram`, ms → count), for whoever needs percentiles over many seconds (a benchmark).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from loadtui.loadgen import stats as st
from loadtui.loadgen.arrivals import OpenCounters

MIN_INTERVAL_S = 1e-3
"""A floor for the interval so that two calls in the same instant never divide by zero."""

ERROR_TEXT_LIMIT = 300
"""Characters of an error's text kept per record (the server's reason comes first in psycopg's messages)."""


def counters(entry: Any) -> st.Counters:
    """The cumulative figures of one Locust `StatsEntry` (or anything with the same attributes)."""
    return st.Counters(int(entry.num_requests), int(entry.num_failures), dict(entry.response_times))


def _per_second(d: st.Delta, interval: float) -> st.Rates:
    return st.Rates(d.requests / interval, d.failures / interval)


class Sampler:
    """Turns the runner's cumulative stats into one record per second."""

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        retries: Callable[[], int] = lambda: 0,
        open_model: Callable[[], OpenCounters | None] = lambda: None,
        worker_rates: Callable[[], st.WorkerRates | None] = lambda: None,
    ) -> None:
        self._clock = clock
        self._worker_rates = worker_rates
        self._retries = retries
        self._open_model = open_model
        self._previous_open: OpenCounters | None = None
        self._previous_retries = retries()
        self.previous: dict[tuple[str, str], st.Counters] = {}
        """Each endpoint's counters at the last sample, by (name, method)."""
        self.previous_total: st.Counters | None = None
        self.previous_errors: dict[Any, int] = {}
        """Each error's occurrences at the last sample, by Locust's error key."""
        self.last = clock()
        self._total_entry: Any = None
        self._started: Any = None
        self.resets = 0
        """How many times Locust's stats were found cleared."""

    def _was_reset(self, stats: Any) -> bool:
        """True when Locust cleared or reset its stats since the last sample."""
        total = stats.total
        started = getattr(total, "start_time", None)
        seen = self._total_entry is not None
        reset = seen and (total is not self._total_entry or started != self._started)
        self._total_entry, self._started = total, started
        return reset

    def sample(self, stats: Any, users: int) -> dict[str, Any]:
        """The record for the interval since the last call."""
        now = self._clock()
        interval = max(MIN_INTERVAL_S, now - self.last)
        self.last = now
        if self._was_reset(stats):
            self.resets += 1
            self.previous.clear()
            self.previous_total = None
            self.previous_errors.clear()
        # A master's workers measured their own seconds (see `WorkerSeconds`); one process counts its own.
        measured = self._worker_rates()
        total = counters(stats.total)
        d_total = st.delta(total, self.previous_total)
        self.previous_total = total
        endpoints = []
        for (name, method), entry in list(stats.entries.items()):
            current = counters(entry)
            d = st.delta(current, self.previous.get((name, method)))
            self.previous[(name, method)] = current
            lat = st.latency_summary(d.buckets)
            rates = measured.endpoints.get((name, method or ""), st.Rates()) if measured else _per_second(d, interval)
            endpoints.append(
                {
                    "method": method or "",
                    "name": name,
                    "rps": rates.requests,
                    "fail_rps": rates.failures,
                    "p50": lat["p50"],
                    "p95": lat["p95"],
                    "p99": lat["p99"],
                }
            )
        errors = []
        for key, err in list(stats.errors.items()):
            count = int(err.occurrences)
            old = self.previous_errors.get(key, 0)
            new = count - old if count >= old else count  # fewer than before: the error was cleared and came back
            self.previous_errors[key] = count
            errors.append(
                {
                    "method": err.method or "",
                    "name": err.name,
                    "error": str(err.error)[:ERROR_TEXT_LIMIT],
                    "count": count,
                    "new": new,
                }
            )
        total_rates = measured.total if measured else _per_second(d_total, interval)
        retries = self._retries()
        retried = max(0, retries - self._previous_retries)
        self._previous_retries = retries
        record = {
            "type": "stats",
            "interval": interval,
            "retried_rps": retried / interval,
            "users": users,
            "rps": total_rates.requests,
            "fail_rps": total_rates.failures,
            "latency": st.latency_summary(d_total.buckets),
            "endpoints": endpoints,
            "errors": errors,
            "requests_total": total.requests,
            "histogram": {str(k): v for k, v in d_total.buckets.items()},
        }
        opened = self._open_model()
        if opened is not None:
            record["open"] = self._open_figures(opened, interval)
        return record

    def _open_figures(self, now: OpenCounters, interval: float) -> dict[str, Any]:
        """The open model's second: target and achieved rate, dropped arrivals, in flight, service-time percentiles."""
        before = self._previous_open or OpenCounters()
        self._previous_open = OpenCounters(
            now.target_rate, now.due, now.dropped, now.completed, now.in_flight, now.users, now.service.copy()
        )
        service = st.diff_buckets(now.service, before.service)
        # A master's workers measured their own seconds; one process counts its own.
        due, achieved, dropped = now.rates or (
            max(0, now.due - before.due) / interval,
            max(0, now.completed - before.completed) / interval,
            max(0, now.dropped - before.dropped) / interval,
        )
        return {
            "target_rate": now.target_rate,
            "due_rate": due,
            "achieved_rate": achieved,
            "dropped_rps": dropped,
            "in_flight": now.in_flight,
            "service": st.latency_summary(service),
            "service_histogram": {str(k): v for k, v in service.items()},
        }
