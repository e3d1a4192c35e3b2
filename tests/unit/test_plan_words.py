"""What a sweep tells its reader, exactly: the plan's events, the panel's rows at every phase, the refusals, the
estimate of each kind of step. test_plan.py states the runner's rules; these pin the words and numbers they show."""

from __future__ import annotations

from typing import Any, cast

import pytest

from loadtui.config import RunConfig
from loadtui.errors import UsageError
from loadtui.results.verdict import Knee, StepResult, Verdict, parse_vary
from loadtui.session.core import Session
from loadtui.session.plan import Plan, PlanRunner, PlanView, Row
from tests.helpers import refused
from tests.unit.test_plan import Stand, start


def said(stand: Stand) -> list[tuple[str, str, dict[str, Any]]]:
    return [(e.kind, e.message, e.data) for e in stand.events]


class Told(Stand):
    """Keeps the progress callback each change was given."""

    def __init__(self, config: RunConfig) -> None:
        super().__init__(config)
        self.progress: list[Any] = []

    def change(self, progress: Any = None, **changes: Any) -> None:
        self.progress.append(progress)
        super().change(**changes)


def test_the_plan_s_events_in_order() -> None:
    verdicts: list[Verdict] = []
    plan = Plan.from_varies([parse_vary("workers=1,2")])
    runner = PlanRunner(plan, [], step_s=2, settle_timeout=10, on_done=verdicts.append)
    stand = Told(RunConfig())
    runner.attach(cast(Session, stand))
    runner.poll(cast(Session, stand), progress=print)
    stand.feed(runner, 5, rps=100.0)
    stand.feed(runner, 5, rps=300.0)
    stand.feed(runner, 0)
    assert stand.progress == [print, None]  # each change gets the progress its poll was given
    events = said(stand)
    assert events[:2] == [
        ("plan", "plan of 2 step(s), 2 s measured each: 1 worker | 2 workers",
         {"steps": [{"workers": 1}, {"workers": 2}], "step_s": 2, "slos": []}),
        ("plan", "step 1/2: 1 worker", {"step": 0}),
    ]  # fmt: skip
    assert events[2] == ("plan", "step 2/2: 2 workers", {"step": 1})
    assert events[3][0] == "verdict" and events[3][1] == verdicts[0].why == stand.verdict.why
    assert verdicts == [runner.verdict] and runner.verdict is not None and runner.verdict.config == {"workers": 2}
    assert [r.segment.index for r in runner.results] == [1, 2]  # each step's own segment


def test_a_stopped_plan_says_why_after_its_verdict() -> None:
    stand, runner = start(["workers=1,2"], ["p95 < 100 ms"], step_s=2)
    stand.feed(runner, 5, rps=100.0)
    runner.stop("you took over")
    runner.stop("again")  # once done, a second stop changes nothing
    assert runner.stopped == "you took over"
    kind, message, data = said(stand)[-1]
    assert (kind, data["verdict"]["slos"]) == ("verdict", ["p95 < 100 ms"])
    assert message == stand.verdict.why + " (plan stopped: you took over)"
    assert stand.verdict.config == {"workers": 1}


def test_a_plan_never_attached_stops_at_once() -> None:
    runner = PlanRunner(Plan.from_varies([parse_vary("workers=1,2")]))
    runner.stop("refused")
    assert runner.finished and runner.verdict is None and runner.view().phase == "done"


def test_the_panel_at_every_phase() -> None:
    stand, runner = start(["workers=1,2,3"], ["p95 < 100 ms"], step_s=4)
    assert runner.view() == PlanView(
        [Row("1 worker", "settling"), Row("2 workers", "next"), Row("3 workers", "next")], "settling", 0, 4.0, None,
        None,
    )  # fmt: skip
    stand.feed(runner, 3, p95=50.0)
    stand.feed(runner, 1, p95=50.0)
    assert runner.view() == PlanView(
        [Row("1 worker", "measuring"), Row("2 workers", "next"), Row("3 workers", "next")], "measuring", 0, 3.0, None,
        None,
    )  # fmt: skip
    stand.feed(runner, 3, p95=50.0)
    first = runner.results[0]
    assert runner.view() == PlanView(
        [Row("1 worker", "done", first, True), Row("2 workers", "settling"), Row("3 workers", "next")],
        "settling",
        1,
        4.0,
        None,
        None,
    )  # feeding polls: the next step is applied at once
    stand.feed(runner, 3, p95=500.0)
    stand.fail_next = True  # the third step's change fails as the second ends
    stand.feed(runner, 4, p95=500.0)
    second, third = runner.results[1:]
    assert third.note == "failed: the app did not start"
    runner.poll(cast(Session, stand))
    assert runner.view() == PlanView(
        [Row("1 worker", "done", first, True), Row("2 workers", "done", second, False),
         Row("3 workers", "failed", third, None)], "done", 3, None, runner.verdict, None,
    )  # fmt: skip


def test_a_skipped_step_has_no_slo_mark_and_its_overhead_counts_to_the_skip() -> None:
    stand, runner = start(["workers=1,2"], ["p95 < 100 ms"], step_s=4)
    stand.feed(runner, 3)
    stand.feed(runner, 1)
    runner.skip()
    row = runner.view().rows[0]
    assert (row.state, row.slo_met, row.result.note if row.result else None) == ("skipped", None, "skipped after 1 s")
    assert len(runner.overheads) == 1 and 0.0 <= runner.overheads[0] < 60
    assert runner.overheads[0] == round(runner.overheads[0], 2)


def test_a_capacity_search_drops_the_rest_of_its_group_and_keeps_the_knee_per_group() -> None:
    stand, runner = start(["workers=1,2", "users=auto"], step_s=2)
    stand.feed(runner, 5, users=5, rps=50.0)
    runner.poll(cast(Session, stand))
    stand.feed(runner, 5, users=10, rps=51.0)  # +2%: the knee of the first group is 5 users
    assert runner.knees == {0: Knee(5.0, "1 worker · 10 users added +2% req/s over 1 worker · 5 users", True)}
    view = runner.view()
    assert [(r.label, r.state) for r in view.rows][:3] == [
        ("1 worker · 5 users", "done"),
        ("1 worker · 10 users", "done"),
        ("2 workers · 5 users", "settling"),
    ]
    dropped = [r.label for r in view.rows if r.state == "dropped"]
    assert dropped == [f"1 worker · {n} users" for n in (20, 40, 80, 160, 320, 640, 1280)]
    assert view.knees == runner.knees


def test_a_failed_or_skipped_step_does_not_count_toward_the_knee() -> None:
    stand, runner = start(["users=auto"], step_s=2)
    stand.feed(runner, 3, users=5, rps=50.0)
    stand.fail_next = True  # 10 users: the change fails as 5 users ends
    stand.feed(runner, 2, users=5, rps=50.0)
    runner.poll(cast(Session, stand))
    stand.feed(runner, 3, users=20)
    runner.skip()  # 20 users: skipped
    assert runner.knees[0] == Knee(5.0, "every step met the objectives and still added throughput", False)
    assert [r.note for r in runner.results] == ["", "failed: the app did not start", "skipped"]


def test_the_knee_goes_first_in_the_verdict_of_a_single_search() -> None:
    stand, runner = start(["users=auto"], ["p95 < 100 ms"], step_s=2)
    stand.feed(runner, 5, users=5, rps=50.0, p95=20.0)
    stand.feed(runner, 5, users=10, rps=90.0, p95=200.0)
    stand.feed(runner, 0)
    assert runner.verdict == Verdict(
        1, {"users": 5}, 50.0, 20.0,
        "knee: 5 users (10 users missed p95 < 100 ms); 5 users: 50 req/s, p95 20 ms — the most req/s meeting "
        "p95 < 100 ms; 10 users did 90 req/s but missed p95 < 100 ms (200 ms)", knee=5.0, slos=["p95 < 100 ms"],
    )  # fmt: skip


@pytest.mark.parametrize(
    ("varies", "config", "message"),
    [
        (["workers=1,2"], RunConfig(host="http://127.0.0.1:9"),
         "--vary workers needs an app loadtui starts; with --host its workers are not ours"),
        (["scenario=ping"], RunConfig(locustfile="x.py"),
         "--vary scenario picks the bundled scenarios; drop --locustfile or vary your own"),
        (["users=5,10"], RunConfig(rate=10.0),
         "--vary users with --rate: users and a rate each choose how the load comes; vary one"),
        (["rate=5,10", "users=5"], RunConfig(),
         "--vary users with --rate: users and a rate each choose how the load comes; vary one"),
        (["pool-max=1"], RunConfig(pool_min=2),
         "plan step “pool max 1”: "),
    ],
)  # fmt: skip
def test_a_plan_this_session_cannot_apply_is_refused_in_words(
    varies: list[str], config: RunConfig, message: str
) -> None:
    plan = Plan.from_varies([parse_vary(v) for v in varies])
    with pytest.raises(UsageError) as caught:
        plan.check(config)
    assert str(caught.value).startswith(message) and (message.endswith(": ") or str(caught.value) == message)


def test_a_setting_varied_twice_is_refused_in_words() -> None:
    assert (
        refused(lambda: Plan.from_varies([parse_vary("workers=1"), parse_vary("workers=2")]))
        == "--vary names a setting twice; give each setting one --vary with all its values"
    )


def test_the_steps_are_the_product_with_the_search_innermost_and_a_group_per_combination() -> None:
    plan = Plan.from_varies([parse_vary("rate=auto"), parse_vary("workers=1,2")])
    assert plan.search and plan.steps[0].changes == {"workers": 1, "rate": 10.0} and plan.steps[0].group == 0
    assert plan.steps[11].changes == {"workers": 2, "rate": 10.0} and plan.steps[11].group == 1
    assert len(plan.steps) == 22


@pytest.mark.parametrize(
    ("vary", "config", "seconds"),
    [
        ("users=100", None, 5 + 3),  # without a configuration: settling only
        ("scenario=ping", RunConfig(users=40, spawn_rate=10), 5 + 2 + 4),  # a new load generator, 40 users at 10/s
        ("workers=3", RunConfig(workers=1, users=10, spawn_rate=10), 5 + 2 + 6),  # two workers added, then spreading
        ("workers=3", RunConfig(workers=1, users=10, spawn_rate=10, rebalance=False), 5 + 2 + 3),
        ("users=20", RunConfig(users=10, spawn_rate=2), 5 + 5),  # 10 more at 2/s
        ("rate=50", RunConfig(rate=10.0, users=10, spawn_rate=1), 5 + 3),  # arrivals: no ramp
        ("users=12,30", RunConfig(users=10, spawn_rate=1), (5 + 3) + (5 + 18)),
    ],
)
def test_an_estimate_per_kind_of_step(vary: str, config: RunConfig | None, seconds: float) -> None:
    assert Plan.from_varies([parse_vary(vary)]).estimate_s(5, config) == seconds


def test_a_result_keeps_a_copy_of_the_step_s_settings() -> None:
    stand, runner = start(["workers=1"], step_s=2)
    stand.feed(runner, 5)
    result: StepResult = runner.results[0]
    assert result.changes == {"workers": 1} and result.changes is not runner.plan.steps[0].changes
