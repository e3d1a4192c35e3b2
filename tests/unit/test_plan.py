"""The plan runner's steps, settling, skip, stop and capacity search, driven by synthetic ticks.

A stand-in for the session records what the runner asks of it; the real session runs in test_sweeps.py.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any, cast

import pytest

from loadtui.config import RunConfig
from loadtui.model import Event, Tick
from loadtui.results.verdict import parse_slo, parse_vary
from loadtui.session.core import Session
from loadtui.session.plan import Plan, PlanRunner
from tests.helpers import tick


class Stand:
    """Only what a PlanRunner uses of a Session (the stand-in is its own `changes`)."""

    def __init__(self, config: RunConfig) -> None:
        self.config = config
        self.children = SimpleNamespace(limits=None)
        self.ledger = SimpleNamespace(segment=0)
        self.shaper = SimpleNamespace(rebalancing=False)
        self.changes = self
        self.verdict: Any = None
        self.plan_results: list[Any] = []
        self.events: list[Event] = []
        self.asked: list[dict[str, Any]] = []
        self.on_tick: Callable[[Tick], object] | None = None
        self.fail_next = False

    def subscribe(self, on_tick: Callable[[Tick], object] | None = None, **_: Any) -> None:
        self.on_tick = on_tick

    def event(self, kind: str, message: str, **data: Any) -> None:
        self.events.append(Event(0.0, kind, message, data))

    def sweep_ended(self, verdict: Any, steps: list[Any], message: str) -> None:
        self.verdict, self.plan_results = verdict, steps
        self.event("verdict", message, verdict=verdict.to_dict())

    def change(self, progress: Any = None, **changes: Any) -> None:
        if self.fail_next:
            self.fail_next = False
            from loadtui.errors import RunFailed

            raise RunFailed("the app did not start")
        self.asked.append(changes)
        self.config = self.config.replace(**changes)
        self.ledger.segment += 1

    def feed(self, runner: PlanRunner, n: int, **kw: Any) -> None:
        """`n` seconds of the current configuration, then let the runner act."""
        assert self.on_tick is not None
        users = kw.pop("users", self.config.users)
        for _ in range(n):
            self.on_tick(dataclasses.replace(tick(users=users, **kw), segment=self.ledger.segment))
        runner.poll(cast(Session, self))


def start(
    varies: list[str], slos: list[str] | None = None, step_s: float = 5, **config: Any
) -> tuple[Stand, PlanRunner]:
    plan = Plan.from_varies([parse_vary(v) for v in varies])
    runner = PlanRunner(plan, [parse_slo(s) for s in slos or []], step_s=step_s, settle_timeout=10)
    stand = Stand(RunConfig(**config))
    runner.attach(cast(Session, stand))
    runner.poll(cast(Session, stand))
    return stand, runner


def test_each_step_settles_then_measures_its_seconds_only() -> None:
    stand, runner = start(["workers=1,2"], step_s=5)
    assert stand.asked == [{"workers": 1}] and runner.phase == "settling"
    stand.feed(runner, 3, rps=1.0)  # settling seconds: not measured
    assert runner.view().phase == "measuring"
    stand.feed(runner, 5, rps=100.0)
    assert stand.asked[-1] == {"workers": 2} and len(runner.results) == 1
    assert runner.results[0].segment.rps == 100.0 and runner.results[0].segment.steady_seconds == 5
    stand.feed(runner, 8, rps=200.0, worker_cpu=(40.0, 40.0))
    stand.feed(runner, 0)
    assert runner.finished and stand.verdict is not None and stand.verdict.config == {"workers": 2}
    assert [e.kind for e in stand.events].count("verdict") == 1
    assert len(stand.plan_results) == 2 and len(runner.overheads) == 2


def test_a_step_waits_for_every_user_and_the_rebalancing() -> None:
    stand, runner = start(["users=40"], users=10)
    stand.feed(runner, 4, users=20)  # still spawning
    assert runner.phase == "settling"
    stand.shaper.rebalancing = True
    stand.feed(runner, 1, users=40)
    assert runner.phase == "settling"
    stand.shaper.rebalancing = False
    stand.feed(runner, 1, users=40)
    assert runner.view().phase == "measuring"


def test_a_step_that_never_settles_is_measured_with_a_note() -> None:
    stand, runner = start(["users=40"], users=10, step_s=3)
    stand.feed(runner, 10, users=20)
    stand.feed(runner, 3, users=20)
    assert runner.results[0].note == "did not settle in 10 s"


def test_ticks_of_another_segment_are_ignored() -> None:
    stand, runner = start(["workers=1,2"])
    stand.ledger.segment += 5  # a change by hand
    stand.feed(runner, 20)
    assert runner.phase == "settling" and not runner.results


def test_skip_keeps_what_was_measured_and_moves_on() -> None:
    stand, runner = start(["workers=1,2,3"], step_s=10)
    stand.feed(runner, 3)
    stand.feed(runner, 2, rps=50.0)
    runner.skip()
    assert runner.results[0].note == "skipped after 2 s" and runner.results[0].segment.rps == 50.0
    runner.poll(cast(Session, stand))
    assert stand.asked[-1] == {"workers": 2}
    runner.skip()  # still settling: nothing measured
    assert runner.results[1].note == "skipped" and runner.results[1].segment.rps is None
    view = runner.view()
    assert [r.state for r in view.rows] == ["skipped", "skipped", "next"]


def test_stop_gives_the_verdict_of_the_steps_measured_so_far() -> None:
    stand, runner = start(["workers=1,2,3"], step_s=3)
    stand.feed(runner, 6, rps=80.0)
    runner.stop("you took over")
    assert runner.finished and runner.stopped == "you took over"
    assert stand.verdict.config == {"workers": 1}
    assert "plan stopped: you took over" in stand.events[-1].message
    assert [r.state for r in runner.view().rows] == ["done", "stopped", "stopped"]
    runner.poll(cast(Session, stand))
    assert stand.asked == [{"workers": 1}, {"workers": 2}]  # nothing runs after a stop


def test_a_failed_step_is_recorded_and_the_plan_goes_on() -> None:
    plan = Plan.from_varies([parse_vary("pool-max=5,10")])
    runner = PlanRunner(plan, step_s=3)
    stand = Stand(RunConfig())
    runner.attach(cast(Session, stand))
    stand.fail_next = True
    runner.poll(cast(Session, stand))
    assert runner.results[0].note == "failed: the app did not start"
    runner.poll(cast(Session, stand))
    assert stand.asked == [{"pool_max": 10}]


def test_a_capacity_search_stops_at_the_slo_breach_and_reports_the_knee() -> None:
    stand, runner = start(["users=auto"], ["p95 < 100 ms"], step_s=3)
    for users, p95 in ((5, 20.0), (10, 40.0), (20, 150.0)):
        assert stand.config.users == users
        stand.feed(runner, 6, rps=10.0 * users, p95=p95)
    stand.feed(runner, 0)
    assert runner.finished and stand.verdict.knee == 10
    assert stand.verdict.why.startswith("knee: 10 users (20 users missed p95 < 100 ms)")
    states = [r.state for r in runner.view().rows]
    assert states[:3] == ["done"] * 3 and set(states[3:]) == {"dropped"}


def test_the_plan_panel_view_counts_down_the_measured_seconds() -> None:
    stand, runner = start(["workers=1,2"], ["p95 < 100 ms"], step_s=5)
    assert runner.view().remaining_s == 5
    stand.feed(runner, 3)
    stand.feed(runner, 2)
    view = runner.view()
    assert view.phase == "measuring" and view.remaining_s == 3 and view.rows[0].state == "measuring"
    stand.feed(runner, 3)
    assert runner.view().rows[0].slo_met is True


def test_a_plan_refused_at_attach_never_runs_and_says_why() -> None:
    from loadtui.errors import UsageError

    plan = Plan.from_varies([parse_vary("workers=1,4"), parse_vary("pool-max=10,30")])
    runner = PlanRunner(plan, step_s=3)
    stand = Stand(RunConfig())
    stand.children.limits = type("Limits", (), {"for_ordinary_roles": 97})()
    try:
        runner.attach(cast(Session, stand))
    except UsageError as exc:
        runner.stop(f"refused: {exc}")
    runner.poll(cast(Session, stand))
    assert stand.asked == [] and runner.finished and runner.verdict is None
    assert runner.stopped is not None and "4 workers × pool max 30" in runner.stopped


@pytest.mark.parametrize(
    ("vary", "config", "measured"),
    [
        # Measured on 2 cores (headless --step, the plan event to the verdict), and what the estimate says of each.
        ("workers=1,2,3", RunConfig(users=20), 31.1),
        ("pool-max=4,8", RunConfig(users=30), 18.0),
        ("users=10,40", RunConfig(workers=2), 16.0),
        ("pool-max=3,6,12", RunConfig(users=20), 27.1),
    ],
)
def test_a_sweep_estimate_is_within_10_percent_of_what_it_took(vary: str, config: RunConfig, measured: float) -> None:
    from loadtui.results.verdict import parse_vary

    estimate = Plan.from_varies([parse_vary(vary)]).estimate_s(5, config)
    assert abs(estimate - measured) <= 0.1 * measured, estimate


def test_an_estimate_counts_a_restart_the_ramp_and_the_spreading_but_not_fewer_users() -> None:
    from loadtui.results.verdict import parse_vary
    from loadtui.session.plan import RESTART_S, SPREAD_S

    base = RunConfig(users=50, spawn_rate=10)
    assert Plan.from_varies([parse_vary("users=10")]).estimate_s(5, base) == 5 + 3  # fewer users stop at once
    assert Plan.from_varies([parse_vary("users=100")]).estimate_s(5, base) == 5 + 5  # 50 more at 10/s
    assert Plan.from_varies([parse_vary("pool-max=4")]).estimate_s(5, base) == 5 + RESTART_S + 5  # the ramp after it
    assert Plan.from_varies([parse_vary("workers=2")]).estimate_s(5, base) == 5 + 1 + SPREAD_S
