"""The open model's arithmetic with an injected clock: intended times, dropped arrivals, corrected latency."""

from __future__ import annotations

import itertools
import random
from collections import Counter
from typing import Any

import pytest

from loadtui.loadgen.arrivals import MAX_CATCH_UP, OpenCounters, Pool, Schedule, corrected_ms, round_ms
from loadtui.loadgen.sampler import Sampler


def test_uniform_arrivals_are_due_evenly_from_the_start() -> None:
    schedule = Schedule(4.0, start=10.0)
    assert schedule.due(9.99) == []
    assert schedule.due(10.0) == [10.0]
    assert schedule.due(11.0) == [10.25, 10.5, 10.75, 11.0]


def test_a_late_scheduler_gets_every_arrival_it_missed_with_its_own_intended_time() -> None:
    schedule = Schedule(10.0, start=0.0)
    missed = schedule.due(2.05)  # the scheduler slept 2 s (a stalled load generator)
    assert len(missed) == 21
    assert missed[0] == 0.0
    assert missed[-1] == pytest.approx(2.0)
    assert schedule.due(2.05) == []


def test_catch_up_is_bounded() -> None:
    schedule = Schedule(1e6, start=0.0)
    assert len(schedule.due(1e3)) == MAX_CATCH_UP


def test_a_new_rate_applies_from_now_without_a_burst_or_a_gap() -> None:
    schedule = Schedule(1.0, start=0.0)
    assert schedule.due(0.5) == [0.0]  # the next one was due at 1.0
    schedule.set_rate(10.0, now=0.5)
    assert schedule.next == pytest.approx(0.6)  # a gap of the new rate after now, earlier than the old next
    assert schedule.due(1.0) == pytest.approx([0.6, 0.7, 0.8, 0.9, 1.0])
    schedule.set_rate(0.0, now=1.0)
    assert schedule.due(100.0) == []
    schedule.set_rate(2.0, now=100.0)  # from a stop: the first arrival at once
    assert schedule.due(101.0) == [100.0, 100.5, 101.0]


def test_poisson_arrivals_hold_the_rate_on_average_with_exponential_gaps() -> None:
    schedule = Schedule(50.0, start=0.0, arrivals="poisson", rng=random.Random(7))
    times = schedule.due(200.0)
    assert len(times) / 200.0 == pytest.approx(50.0, rel=0.03)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    # Exponential gaps: mean = sd = 1/rate, and a third of them longer than the mean (e^-1 = 0.37).
    mean = sum(gaps) / len(gaps)
    assert mean == pytest.approx(0.02, rel=0.03)
    assert sum(g > mean for g in gaps) / len(gaps) == pytest.approx(0.368, abs=0.02)


def test_latency_counts_from_the_intended_start() -> None:
    assert corrected_ms(12.0, intended=5.0, started=5.0) == 12.0
    assert corrected_ms(12.0, intended=5.0, started=7.0) == 2012.0  # started 2 s late: those 2 s are the user's wait
    assert corrected_ms(12.0, intended=5.0, started=4.9) == 12.0  # early (clock jitter) never subtracts
    assert corrected_ms(12.0, intended=None, started=7.0) == 12.0  # not an arrival: nothing to add


def test_round_ms_matches_locusts_buckets() -> None:
    assert [round_ms(v) for v in (3.4, 99.6, 147.0, 1234.0, 12345.0)] == [3, 100, 150, 1200, 12000]


def taken(pool: Pool[int]) -> int:
    user = pool.take()
    assert user is not None
    return user


def test_the_pool_drops_arrivals_beyond_the_limit_and_reuses_free_users_oldest_first() -> None:
    made = iter(range(100))
    pool = Pool(lambda: next(made), limit=3, clients=2)
    a, b, c = (taken(pool) for _ in range(3))
    assert (a, b, c) == (0, 1, 2)
    assert pool.take() is None  # three in flight: the arrival is dropped
    pool.give_back(b)
    pool.give_back(a)
    assert pool.take() == 1  # the longest free first: every connection carries its share
    pool.give_back(c, keep=False)  # it raised StopUser: retired
    assert pool.all == [0, 1]
    assert pool.running == 1


def test_the_pool_makes_its_clients_before_it_reuses_one() -> None:
    made = iter(range(100))
    pool = Pool(lambda: next(made), limit=100, clients=4)
    seen = []
    for _ in range(8):
        user = taken(pool)
        seen.append(user)
        pool.give_back(user)
    assert seen == [0, 1, 2, 3, 0, 1, 2, 3]


def test_worker_counters_read_from_a_report_refuse_what_is_malformed() -> None:
    good = OpenCounters(5.0, 10, 1, 9, 2, 4, Counter({3: 9}))
    assert OpenCounters.from_dict(good.to_dict()) == good
    hostile = {"target_rate": float("inf"), "due": -4, "dropped": True, "service": {"x": 1, "²": 3, "7": -1, "5": 2}}
    read = OpenCounters.from_dict(hostile)
    assert (read.target_rate, read.due, read.dropped, read.service) == (0.0, 0, 0, Counter({5: 2}))
    assert OpenCounters.from_dict("nonsense") == OpenCounters()
    assert OpenCounters.from_dict({"rates": [1, 2, float("nan")]}).rates is None
    assert OpenCounters.from_dict({"rates": [1, 2.5, 0]}).rates == (1.0, 2.5, 0.0)


def test_a_masters_rates_are_its_workers_own_not_counts_that_alias_into_its_seconds() -> None:
    now = [0.0]
    summed = OpenCounters(target_rate=100.0, completed=500, rates=(100.0, 99.0, 0.0))
    sampler = Sampler(clock=lambda: now[0], open_model=lambda: summed)
    now[0] = 1.0
    summed.completed += 150  # two reports of one worker landed in this second
    assert sampler.sample(_Stats(), 0)["open"]["achieved_rate"] == 99.0


class _Stats:
    class _Entry:
        num_requests = 0
        num_failures = 0
        response_times: dict[int, int] = {}

    total = _Entry()
    entries: dict[Any, Any] = {}
    errors: dict[Any, Any] = {}


def test_the_sampler_turns_open_counters_into_rates_per_second() -> None:
    now = [0.0]
    counters = OpenCounters(target_rate=100.0)
    sampler = Sampler(clock=lambda: now[0], open_model=lambda: counters)
    now[0] = 1.0
    counters.due, counters.completed, counters.dropped, counters.in_flight = 100, 90, 4, 6
    counters.service.update({2: 80, 40: 10})
    record = sampler.sample(_Stats(), 0)["open"]
    assert record["target_rate"] == 100.0
    assert record["due_rate"] == 100.0
    assert record["achieved_rate"] == 90.0
    assert record["dropped_rps"] == 4.0
    assert record["in_flight"] == 6
    assert record["service"]["p50"] == 2 and record["service"]["p99"] == 40
    now[0] = 3.0  # two seconds later, 100 more completed: 50 a second, and only the new histogram counts
    counters.completed += 100
    counters.service.update({7: 100})
    record = sampler.sample(_Stats(), 0)["open"]
    assert record["achieved_rate"] == 50.0
    assert record["service"]["p99"] == 7
    assert "open" not in Sampler(clock=lambda: 0.0).sample(_Stats(), 3)  # the closed model adds nothing


def test_round_ms_at_the_edges_of_its_digits() -> None:
    assert [round_ms(v) for v in (99.4, 100.6, 999.0, 1049.0, 9940.0, 10_400.0)] == [99, 100, 1000, 1000, 9900, 10_000]


def test_worker_counters_at_their_edges() -> None:
    zero = OpenCounters.from_dict({"due": 0, "dropped": 1, "service": {"3": 0, "4": 1}})
    assert (zero.due, zero.dropped, zero.service) == (0, 1, Counter({4: 1}))
    summed = OpenCounters.from_dict({"service": {"4": 1, "04": 2}})
    assert summed.service == Counter({4: 3})  # two spellings of one bucket add up
    with_rates = OpenCounters(rates=(1.0, 2.0, 0.0))
    assert with_rates.to_dict()["rates"] == [1.0, 2.0, 0.0] and OpenCounters().to_dict()["rates"] is None
    assert OpenCounters.from_dict(with_rates.to_dict()) == with_rates


def test_counters_start_at_nothing() -> None:
    assert OpenCounters().to_dict() == {
        "target_rate": 0.0, "due": 0, "dropped": 0, "completed": 0, "in_flight": 0, "users": 0, "service": {},
        "rates": None,
    }  # fmt: skip
