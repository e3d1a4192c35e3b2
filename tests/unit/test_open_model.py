"""The open model (`--rate`) outside the load generator: its record, the log, the diagnosis and the rate keys."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from loadtui.config import RunConfig
from loadtui.diagnose import THRESHOLDS, evaluate
from loadtui.errors import UsageError
from loadtui.loadgen.record import LoadRecord
from loadtui.model import Latency, OpenLoad, Tick
from loadtui.tui.keys import step_rate
from tests.helpers import tick

RATE = RunConfig(rate=100.0)


def opened(t: float, *, target: float = 100.0, achieved: float = 100.0, in_flight: int = 2, dropped: float = 0.0,
           p50: float = 10.0, service_p50: float = 10.0, **kw: Any) -> Tick:  # fmt: skip
    open_load = OpenLoad(target, achieved, target, dropped, in_flight, Latency(p50=service_p50, p95=service_p50))
    return dataclasses.replace(tick(t, rps=achieved, p50=p50, users=32, **kw), open=open_load)


def ids(ticks: list[Tick], config: RunConfig = RATE) -> set[str]:
    return {f.id for f in evaluate(ticks, config)}


def test_arrivals_piling_up_are_a_backlog_with_the_figures_that_show_it() -> None:
    # 100 asked, 60 finished: 40 more in flight every second.
    ticks = [opened(float(i), achieved=60.0, in_flight=10 + 40 * i, p50=200.0 + 400 * i) for i in range(5)]
    (found,) = [f for f in evaluate(ticks, RATE) if f.id == "backlog"]
    assert found.title == "The app cannot keep up with 100 req/s: arrivals pile up"
    assert "asked 100/s, finished 60.0/s (60%); in flight 10 → 170 over 5 s" in found.evidence


@pytest.mark.parametrize(
    ("achieved", "growth", "dropped", "backlog"),
    [
        (100 * THRESHOLDS.backlog_kept_up, 40, 0.0, False),  # kept up with: in flight may wander
        (94.0, 0, 0.0, False),  # behind on paper, but nothing piles up (a second's jitter)
        (94.0, 0, 1.0, True),  # arrivals dropped at --max-in-flight: a backlog held at the cap
        (60.0, 40, 0.0, True),
        (60.0, 30, 0.0, False),  # growth below half of what was not finished (40 a second over 4 s): not yet
    ],
)
def test_backlog_edges(achieved: float, growth: int, dropped: float, backlog: bool) -> None:
    ticks = [opened(float(i), achieved=achieved, in_flight=10 + growth * i // 2, dropped=dropped) for i in range(5)]
    assert ("backlog" in ids(ticks)) is backlog


def test_the_closed_model_has_no_backlog_and_the_open_model_no_user_queue() -> None:
    growing = [opened(float(i), achieved=60.0, in_flight=10 + 40 * i) for i in range(5)]
    closed = [dataclasses.replace(t, open=None) for t in growing]
    assert "backlog" not in ids(closed, RunConfig())
    # Users growing with latency, throughput flat: the closed model's queue; by rate, the users are only clients.
    ramp = [tick(float(i), users=5, rps=100.0, p50=50.0) for i in range(5)]
    ramp += [tick(float(i), users=50, rps=100.0, p50=500.0) for i in range(5, 15)]
    assert "queueing" in ids(ramp, RunConfig())
    assert "queueing" not in ids([dataclasses.replace(t, open=OpenLoad(100.0, 100.0)) for t in ramp], RATE)


def test_a_backlog_behind_a_blocked_loop_is_its_consequence() -> None:
    ticks = [opened(float(i), achieved=20.0, in_flight=10 + 80 * i, p50=1000.0, lag=900.0, worker_cpu=[2.0])
             for i in range(6)]  # fmt: skip
    found = {f.id: f for f in evaluate(ticks, RATE)}
    assert found["backlog"].consequence_of == "event-loop-blocked"


def test_the_load_record_reads_the_open_figures_and_drops_what_is_malformed() -> None:
    line = {"type": "stats", "rps": 99.0, "users": 32, "open": {"target_rate": 100, "achieved_rate": 99.5,
            "due_rate": 100.0, "dropped_rps": 0, "in_flight": 3, "service": {"p50": 2.0, "p95": 4.0}}}  # fmt: skip
    record = LoadRecord.parse(line)
    assert record.open == OpenLoad(100.0, 99.5, 100.0, 0.0, 3, Latency(p50=2.0, p95=4.0))
    hostile = LoadRecord.parse({"open": {"target_rate": "fast", "in_flight": float("inf"), "service": [1]}})
    assert hostile.open == OpenLoad()
    assert LoadRecord.parse({"open": "nonsense"}).open is None
    assert LoadRecord.parse({"rps": 5}).open is None  # the closed model


def test_a_tick_with_open_figures_survives_the_log() -> None:
    t = opened(3.0, achieved=97.0, in_flight=4, dropped=1.5)
    assert Tick.from_dict(json.loads(json.dumps(t.to_dict()))) == t


def test_rate_options_are_checked() -> None:
    assert RunConfig(rate=50.0).load_label == "50 req/s" and RunConfig(users=7).load_label == "7 users"
    assert RunConfig(rate=0.0).has_load is False and RunConfig(rate=0.5).has_load
    for bad, match in (
        ({"rate": -1.0}, "--rate must be"),
        ({"rate": float("nan")}, "--rate must be"),
        ({"rate": 1e9}, "--rate must be"),
        ({"max_in_flight": 0}, "--max-in-flight must be at least 1"),
        ({"arrivals": "bursty"}, "--arrivals must be uniform or poisson"),
    ):
        with pytest.raises(UsageError, match=match):
            RunConfig(**bad).validate()


def test_the_users_keys_step_the_rate_by_a_tenth_or_by_doubling() -> None:
    assert step_rate(100.0, 1) == 110.0 and step_rate(100.0, -1) == 90.0
    assert step_rate(5.0, 1) == 6.0 and step_rate(0.5, -1) == 0.0  # at least 1 req/s a step; never below 0
    assert step_rate(100.0, 10) == 200.0 and step_rate(100.0, -10) == 50.0
