"""The per-second maths of the load generator: Locust's cumulative stats → one record per second."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs

from loadtui.loadgen import stats
from loadtui.loadgen.sampler import Sampler


@dataclass
class FakeEntry:
    """A Locust `StatsEntry` as far as the sampler reads it."""

    num_requests: int = 0
    num_failures: int = 0
    response_times: dict[int, int] = field(default_factory=dict)
    start_time: float = 0.0

    def add(self, bucket: int, count: int = 1, failures: int = 0) -> None:
        self.num_requests += count
        self.num_failures += failures
        self.response_times[bucket] = self.response_times.get(bucket, 0) + count


@dataclass
class FakeError:
    method: str
    name: str
    error: str
    occurrences: int


@dataclass
class FakeStats:
    """A Locust `RequestStats`: `total`, `entries` by (name, method), `errors` by key."""

    total: FakeEntry = field(default_factory=FakeEntry)
    entries: dict[tuple[str, str], FakeEntry] = field(default_factory=dict)
    errors: dict[str, FakeError] = field(default_factory=dict)

    def request(self, name: str, method: str, bucket: int, count: int = 1, failures: int = 0) -> None:
        self.entries.setdefault((name, method), FakeEntry()).add(bucket, count, failures)
        self.total.add(bucket, count, failures)

    def clear_all(self) -> None:
        """What Locust does on a start after a stop: a new total entry, no entries, no errors."""
        self.total = FakeEntry(start_time=self.total.start_time + 1)
        self.entries = {}
        self.errors = {}


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_rates_are_divided_by_the_real_interval() -> None:
    clock, s = Clock(), FakeStats()
    sampler = Sampler(clock)
    s.request("/a", "GET", 10, count=30, failures=6)
    clock.now += 2.0  # a late second: 30 requests in 2 s are 15/s, not 30/s
    record = sampler.sample(s, users=5)
    assert record["interval"] == pytest.approx(2.0)
    assert record["rps"] == pytest.approx(15.0)
    assert record["fail_rps"] == pytest.approx(3.0)
    assert record["users"] == 5
    assert record["requests_total"] == 30
    [endpoint] = record["endpoints"]
    assert endpoint == {"method": "GET", "name": "/a", "rps": 15.0, "fail_rps": 3.0, "p50": 10.0, "p95": 10.0,
                        "p99": 10.0}  # fmt: skip
    assert record["latency"] == {"p50": 10.0, "p95": 10.0, "p99": 10.0, "max": 10.0}


def test_second_interval_counts_only_what_happened_in_it() -> None:
    clock, s = Clock(), FakeStats()
    sampler = Sampler(clock)
    s.request("/a", "GET", 10, count=100)
    clock.now += 1.0
    sampler.sample(s, users=1)
    s.request("/a", "GET", 200, count=4)
    s.request("/b", "POST", 20, count=6)
    clock.now += 0.5
    record = sampler.sample(s, users=1)
    assert record["rps"] == pytest.approx(20.0)
    assert record["latency"]["max"] == 200.0
    assert record["latency"]["p50"] == 20.0  # the 100 requests of the first second do not count
    by_name = {e["name"]: e for e in record["endpoints"]}
    assert by_name["/a"]["rps"] == pytest.approx(8.0)
    assert by_name["/a"]["p50"] == 200.0
    assert by_name["/b"]["rps"] == pytest.approx(12.0)
    assert record["requests_total"] == 110


def test_two_samples_in_the_same_instant_do_not_divide_by_zero() -> None:
    clock, s = Clock(), FakeStats()
    sampler = Sampler(clock)
    s.request("/a", "GET", 1)
    record = sampler.sample(s, users=1)
    assert record["interval"] == pytest.approx(1e-3)
    assert record["rps"] == pytest.approx(1000.0)


def test_errors_report_new_occurrences_not_totals() -> None:
    clock, s = Clock(), FakeStats()
    sampler = Sampler(clock)
    s.errors["k"] = FakeError("GET", "/a", "boom", 5)
    clock.now += 1
    first = sampler.sample(s, users=1)
    s.errors["k"].occurrences = 12
    clock.now += 1
    second = sampler.sample(s, users=1)
    assert first["errors"] == [{"method": "GET", "name": "/a", "error": "boom", "count": 5, "new": 5}]
    assert second["errors"][0]["count"] == 12
    assert second["errors"][0]["new"] == 7


def test_error_text_is_cut_to_its_limit() -> None:
    s = FakeStats()
    s.errors["k"] = FakeError("", "/a", "x" * 1000, 1)
    record = Sampler(Clock()).sample(s, users=1)
    assert record["errors"][0]["error"] == "x" * 300
    assert record["errors"][0]["method"] == ""


def test_errors_after_a_pause_and_resume_are_counted_from_zero() -> None:
    # The bug this guards against: 200 errors before a stop/start, 40 after → "new: 0" until they passed 200.
    clock, s = Clock(), FakeStats()
    sampler = Sampler(clock)
    s.request("/a", "GET", 10, count=200, failures=200)
    s.errors["k"] = FakeError("GET", "/a", "too many clients", 200)
    clock.now += 1
    sampler.sample(s, users=10)
    s.clear_all()
    s.request("/a", "GET", 10, count=40, failures=40)
    s.errors["k"] = FakeError("GET", "/a", "too many clients", 40)
    clock.now += 1
    record = sampler.sample(s, users=10)
    assert sampler.resets == 1
    assert record["errors"][0]["new"] == 40
    assert record["rps"] == pytest.approx(40.0)
    assert record["fail_rps"] == pytest.approx(40.0)


def test_a_reset_with_more_requests_than_before_still_agrees_with_its_histogram() -> None:
    # 50 requests before the stop; 80 in the first second after it. Without reset detection the count would be
    # 80 - 50 = 30 while the histogram holds 80.
    clock, s = Clock(), FakeStats()
    sampler = Sampler(clock)
    s.request("/a", "GET", 10, count=50)
    clock.now += 1
    sampler.sample(s, users=10)
    s.clear_all()
    s.request("/a", "GET", 10, count=80)
    clock.now += 1
    record = sampler.sample(s, users=10)
    assert record["rps"] == pytest.approx(80.0)
    assert record["endpoints"][0]["rps"] == pytest.approx(80.0)


def test_reset_all_is_seen_by_the_start_time() -> None:
    # Locust's reset_all keeps the same total entry but restarts its start_time.
    clock, s = Clock(), FakeStats()
    sampler = Sampler(clock)
    s.request("/a", "GET", 10, count=50)
    clock.now += 1
    sampler.sample(s, users=10)
    s.total = FakeEntry(start_time=s.total.start_time)  # a new object with the same start: also a reset
    s.entries = {}
    s.request("/a", "GET", 10, count=70)
    clock.now += 1
    assert sampler.sample(s, users=10)["rps"] == pytest.approx(70.0)
    total = s.total
    total.start_time += 5
    total.num_requests, total.response_times = 90, {10: 90}
    clock.now += 1
    assert sampler.sample(s, users=10)["rps"] == pytest.approx(90.0)
    assert sampler.resets == 2


def test_delta_sees_a_shrunken_bucket_as_a_reset() -> None:
    before = stats.Counters(50, 0, {10: 50})
    after = stats.Counters(80, 0, {12: 80})
    d = stats.delta(after, before)
    assert (d.requests, d.buckets) == (80, {12: 80})
    assert stats.was_reset(after, before)
    assert not stats.was_reset(stats.Counters(60, 0, {10: 50, 12: 10}), before)
    assert stats.was_reset(stats.Counters(60, 0, {10: 60}), stats.Counters(50, 1, {10: 50}))


# One interval of traffic: requests per bucket and failures, and whether Locust cleared its stats first.
_interval = hs.tuples(
    hs.dictionaries(hs.sampled_from([1, 5, 10, 42, 99, 150, 990, 2000]), hs.integers(1, 500), max_size=4),
    hs.integers(0, 100),
    hs.booleans(),
    hs.floats(0.2, 3.0),
)


@settings(max_examples=200, deadline=None)
@given(hs.lists(_interval, min_size=1, max_size=12))
def test_any_sequence_with_resets_gives_nonnegative_seconds_that_sum_to_the_totals(
    intervals: list[tuple[dict[int, int], int, bool, float]],
) -> None:
    clock, s = Clock(), FakeStats()
    sampler = Sampler(clock)
    sent = 0
    counted = 0.0
    failed_sent = 0
    failed_counted = 0.0
    for buckets, failures, reset, seconds in intervals:
        if reset:
            s.clear_all()
        n = sum(buckets.values())
        failures = min(failures, n)
        for bucket, count in buckets.items():
            s.request("/x", "GET", bucket, count)
        s.total.num_failures += failures
        s.entries.setdefault(("/x", "GET"), FakeEntry()).num_failures += failures
        sent += n
        failed_sent += failures
        clock.now += seconds
        record: dict[str, Any] = sampler.sample(s, users=1)
        assert record["rps"] >= 0 and record["fail_rps"] >= 0
        counted += record["rps"] * record["interval"]
        failed_counted += record["fail_rps"] * record["interval"]
        # The second's percentiles come from exactly its own requests.
        assert (record["latency"]["max"] is None) == (n == 0)
        if n:
            assert record["latency"]["max"] == max(buckets)
    assert counted == pytest.approx(sent)
    assert failed_counted == pytest.approx(failed_sent)


def test_an_error_count_that_went_down_without_a_visible_reset_counts_from_zero() -> None:
    clock, s = Clock(), FakeStats()
    sampler = Sampler(clock)
    s.errors["k"] = FakeError("GET", "/a", "boom", 9)
    sampler.sample(s, users=1)
    s.errors["k"].occurrences = 4  # cleared by a reset the sampler could not see, then 4 more
    assert sampler.sample(s, users=1)["errors"][0]["new"] == 4


def test_an_endpoint_without_a_method_is_named_with_an_empty_one() -> None:
    s = FakeStats()
    s.request("custom", None, 5)  # type: ignore[arg-type]  # Locust's request events may carry no method
    [endpoint] = Sampler(Clock()).sample(s, users=1)["endpoints"]
    assert endpoint["method"] == "" and endpoint["name"] == "custom"


def test_a_bucket_that_grew_by_one_request_is_in_the_interval() -> None:
    assert stats.diff_buckets({10: 6, 20: 3}, {10: 5, 20: 3}) == {10: 1}


def test_retries_are_reported_per_second_and_the_record_is_a_stats_line() -> None:
    clock, s = Clock(), FakeStats()
    retries = [3]
    sampler = Sampler(clock, retries=lambda: retries[0])  # 3 before the first second: not counted in it
    retries[0] = 7
    clock.now += 2.0
    record = sampler.sample(s, users=1)
    assert record["type"] == "stats" and record["retried_rps"] == pytest.approx(2.0)  # 4 in 2 s
    clock.now += 1.0
    assert sampler.sample(s, users=1)["retried_rps"] == 0.0


def test_an_error_that_did_not_happen_again_has_no_new_occurrences() -> None:
    clock, s = Clock(), FakeStats()
    sampler = Sampler(clock)
    s.errors["k"] = FakeError("GET", "/a", "boom", 5)
    sampler.sample(s, users=1)
    assert sampler.sample(s, users=1)["errors"][0]["new"] == 0


def test_a_bucket_that_vanished_is_a_reset() -> None:
    assert stats.was_reset(stats.Counters(5, 0, {20: 5}), stats.Counters(1, 0, {10: 1}))


def test_the_open_model_s_second_is_its_counters_differences_over_the_real_interval() -> None:
    from collections import Counter

    from loadtui.loadgen.arrivals import OpenCounters

    clock, s = Clock(), FakeStats()
    counters = OpenCounters(100.0, due=100, dropped=4, completed=90, in_flight=6, users=32, service=Counter({5: 90}))
    sampler = Sampler(clock, open_model=lambda: counters)
    clock.now += 1.0
    first = sampler.sample(s, users=0)["open"]
    assert (first["target_rate"], first["due_rate"], first["achieved_rate"], first["dropped_rps"]) == (
        100.0, 100.0, 90.0, 4.0,
    )  # fmt: skip
    assert first["in_flight"] == 6 and first["service_histogram"] == {"5": 90}
    counters.due, counters.completed, counters.dropped, counters.in_flight = 300, 250, 4, 9
    counters.service[7] += 160
    clock.now += 2.0  # a late second: the counts are over two
    second = sampler.sample(s, users=0)["open"]
    assert (second["due_rate"], second["achieved_rate"], second["dropped_rps"], second["in_flight"]) == (
        100.0, 80.0, 0.0, 9,
    )  # fmt: skip
    assert second["service_histogram"] == {"7": 160} and second["service"]["p50"] == 7
    counters.rates = (50.0, 49.0, 1.0)  # a master: its workers measured their own seconds
    clock.now += 1.0
    third = sampler.sample(s, users=0)["open"]
    assert (third["due_rate"], third["achieved_rate"], third["dropped_rps"]) == (50.0, 49.0, 1.0)
    assert "open" not in Sampler(clock).sample(s, users=0)


def test_a_restarted_open_model_never_gives_negative_rates() -> None:
    from loadtui.loadgen.arrivals import OpenCounters

    clock, s = Clock(), FakeStats()
    counters = OpenCounters(10.0, due=50, dropped=5, completed=50)
    sampler = Sampler(clock, open_model=lambda: counters)
    clock.now += 1.0
    sampler.sample(s, users=0)
    counters.due, counters.dropped, counters.completed = 3, 0, 2  # counting anew
    clock.now += 1.0
    again = sampler.sample(s, users=0)["open"]
    assert (again["due_rate"], again["achieved_rate"], again["dropped_rps"]) == (0.0, 0.0, 0.0)


def _report(interval: Any, requests: Any, failures: Any = 0, **endpoints: tuple[int, int]) -> dict[str, Any]:
    """A worker's report as the master hears it: Locust's `stats_total` and `stats`, and the worker's interval."""
    return {
        stats.INTERVAL_KEY: interval,
        "stats_total": {"name": "Aggregated", "method": "", "num_requests": requests, "num_failures": failures},
        "stats": [
            {"name": f"/{name}", "method": "GET", "num_requests": n, "num_failures": f}
            for name, (n, f) in endpoints.items()
        ],
    }


def test_a_masters_rate_is_each_workers_last_report_over_the_interval_it_measured() -> None:
    seconds = stats.WorkerSeconds()
    assert seconds.rates({"a", "b"}) is None  # before any report
    seconds.add(client_id="a", data=_report(1.0, 75, 3, a=(75, 3)))  # as Locust's `worker_report` event calls it
    seconds.add(client_id="b", data=_report(0.5, 40, 0, a=(30, 0), b=(10, 0)))
    summed = seconds.rates({"a", "b"})
    assert summed == stats.WorkerRates(
        stats.Rates(75 + 80, 3), {("/a", "GET"): stats.Rates(75 + 60, 3), ("/b", "GET"): stats.Rates(20, 0)}
    )
    seconds.add("a", _report(1.0, 70))  # a newer report replaces the last; an endpoint it lacks had none
    assert seconds.rates({"a"}) == stats.WorkerRates(stats.Rates(70, 0), {})
    assert seconds.rates({"b"}) == stats.WorkerRates(stats.Rates(80, 0), {("/a", "GET"): stats.Rates(60, 0),
                                                                         ("/b", "GET"): stats.Rates(20, 0)})  # fmt: skip
    assert seconds.rates({"gone"}) is None  # only live workers count


@pytest.mark.parametrize("interval", [None, 0, -1.0, float("nan"), float("inf"), True, "1"])
def test_a_worker_that_does_not_say_its_interval_leaves_the_rate_to_the_masters_totals(interval: Any) -> None:
    seconds = stats.WorkerSeconds()
    seconds.add("a", _report(1.0, 75))
    seconds.add("b", _report(interval, 75))
    assert seconds.rates({"a", "b"}) is None
    assert seconds.rates({"a"}) == stats.WorkerRates(stats.Rates(75, 0), {})


def test_counts_that_are_not_numbers_count_as_none() -> None:
    seconds = stats.WorkerSeconds()
    seconds.add("a", {stats.INTERVAL_KEY: 2.0, "stats_total": {"num_requests": "many", "num_failures": -4},
                      "stats": [{"name": "/a", "method": None, "num_requests": 8.0}, "junk"]})  # fmt: skip
    assert seconds.rates({"a"}) == stats.WorkerRates(stats.Rates(0, 0), {("/a", ""): stats.Rates(4, 0)})
    seconds.add("a", {stats.INTERVAL_KEY: 2.0, "stats_total": "junk", "stats": "junk"})
    assert seconds.rates({"a"}) == stats.WorkerRates(stats.Rates(0, 0), {})


def test_with_its_workers_rates_a_master_reports_them_not_the_reports_that_happened_to_arrive() -> None:
    # Two workers at 75/s each; this second only one of their reports arrived at the master, the next second three.
    clock, s = Clock(), FakeStats()
    measured = stats.WorkerRates(stats.Rates(150, 6), {("/a", "GET"): stats.Rates(150, 6)})
    sampler = Sampler(clock, worker_rates=lambda: measured)
    s.request("/a", "GET", 10, count=75, failures=3)
    s.request("/b", "GET", 10, count=5)  # /b had requests before the workers' last reports: none in them
    clock.now += 1
    record = sampler.sample(s, users=10)
    assert (record["rps"], record["fail_rps"]) == (150, 6)
    assert {e["name"]: e["rps"] for e in record["endpoints"]} == {"/a": 150, "/b": 0}
    assert record["requests_total"] == 80 and record["latency"]["p50"] == 10.0  # totals and latency: what arrived
