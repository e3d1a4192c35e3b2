"""SLOs, --vary and the verdict: pure rules over segment figures."""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any

import pytest

from loadtui.config import RunConfig
from loadtui.errors import UsageError
from loadtui.results.segments import Segment
from loadtui.results.summary import Summary
from loadtui.results.verdict import (
    AUTO_USERS,
    SloCheck,
    StepResult,
    Verdict,
    check,
    choose,
    knee,
    parse_slo,
    parse_vary,
)
from loadtui.session.plan import Plan


def seg(index: int, rps: float | None, p95: float | None = 50.0, *, fail: float = 0.0, cpu: float = 50.0,
        lg: float = 20.0, findings: tuple[str, ...] = (), steady: int = 10) -> Segment:  # fmt: skip
    return Segment(index=index, label="", start_t=0.0, end_t=10.0, seconds=steady, steady_seconds=steady, rps=rps,
                   fail_rps=fail, p50=p95 and p95 / 2, p95=p95, p99=p95, app_cpu_percent=cpu, cpu_per_worker=cpu,
                   loadgen_cpu_percent=lg, db_connections=4.0, pool_waiting=0.0, findings=list(findings))  # fmt: skip


def step(changes: dict[str, Any], segment: Segment, note: str = "") -> StepResult:
    return StepResult(changes, segment, note)


@pytest.mark.parametrize(
    ("text", "metric", "limit", "shown"),
    [
        ("p95 < 100 ms", "p95", 100.0, "p95 < 100 ms"),
        ("p99<250ms", "p99", 250.0, "p99 < 250 ms"),
        ("P50 < 20", "p50", 20.0, "p50 < 20 ms"),
        ("fail < 1 %", "fail", 1.0, "fail < 1 %"),
        ("fail<0.5%", "fail", 0.5, "fail < 0.5 %"),
        ("rps > 500", "rps", 500.0, "rps > 500 req/s"),
    ],
)
def test_slos_parse(text: str, metric: str, limit: float, shown: str) -> None:
    slo = parse_slo(text)
    assert (slo.metric, slo.limit, str(slo)) == (metric, limit, shown)


@pytest.mark.parametrize(
    "text", ["p95 > 100 ms", "rps < 5", "fail < 1 ms", "p90 < 100 ms", "p95 < fast", "", "p95 < 1 %"]
)
def test_bad_slos_are_refused_with_the_forms_that_work(text: str) -> None:
    with pytest.raises(UsageError, match="p50\\|p95\\|p99 < N ms"):
        parse_slo(text)


def test_an_slo_is_met_strictly_and_never_by_a_figure_not_measured() -> None:
    assert parse_slo("p95 < 100 ms").met(seg(0, 100.0, p95=99.0))
    assert not parse_slo("p95 < 100 ms").met(seg(0, 100.0, p95=100.0))
    assert not parse_slo("p95 < 100 ms").met(seg(0, 100.0, p95=None))
    assert parse_slo("rps > 50").met(seg(0, 51.0)) and not parse_slo("rps > 50").met(seg(0, 50.0))
    fail = parse_slo("fail < 1 %")
    assert fail.measure(seg(0, 200.0, fail=1.0)) == 0.5 and fail.met(seg(0, 200.0, fail=1.0))
    assert not fail.met(seg(0, 200.0, fail=2.0)) and not fail.met(seg(0, None))


def test_slo_checks_cover_every_measured_segment_and_a_run_with_none_misses() -> None:
    slo = parse_slo("p95 < 100 ms")
    checks = check([seg(0, 10.0, p95=50.0), seg(1, None, steady=0), seg(2, 10.0, p95=150.0)], [slo])
    assert [(c.segment, c.met) for c in checks] == [(0, True), (2, False)]
    assert "MISSED (150, segment 2)" in str(checks[1])
    nothing = check([seg(0, None, steady=0)], [slo])
    assert [(c.segment, c.met) for c in nothing] == [(-1, False)] and "nothing was measured" in str(nothing[0])
    assert "give --duration 15 or more" in str(nothing[0])


def test_vary_values_parse_in_order() -> None:
    assert parse_vary("workers=1,2,4").values == (1, 2, 4)
    assert parse_vary("pool-max=5, 10").field == "pool_max"
    assert parse_vary("access-log=off,on").values == (False, True)
    assert parse_vary("db-mode=per-request,pool").values == ("per-request", "pool")
    assert parse_vary("scenario=sync-sleep,async-gather").values == ("sync-sleep", "async-gather")
    auto = parse_vary("users=auto")
    assert auto.auto and auto.values == AUTO_USERS


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("threads=1,2", "KEY one of workers"),
        ("workers", "KEY one of workers"),
        ("workers=", "at least one value"),
        ("workers=0,1", "whole number ≥ 1"),
        ("workers=two", "whole number"),
        ("workers=1,1", "repeats a value"),
        ("access-log=maybe", "on or off"),
        ("db-mode=cache", "pool or per-request"),
        ("scenario=nope", "unknown scenario"),
        ("pool-min=-1", "whole number ≥ 0"),
    ],
)
def test_bad_vary_is_refused_naming_the_fix(text: str, says: str) -> None:
    with pytest.raises(UsageError, match=says):
        parse_vary(text)


def test_plan_is_the_product_first_outermost_and_auto_innermost() -> None:
    plan = Plan.from_varies([parse_vary("users=auto"), parse_vary("workers=1,2"), parse_vary("access-log=off,on")])
    assert plan.steps[0].changes == {"workers": 1, "access_log": False, "users": 5}
    assert [s.changes["users"] for s in plan.steps[: len(AUTO_USERS)]] == list(AUTO_USERS)
    assert [(s.changes["workers"], s.changes["access_log"]) for s in plan.steps[:: len(AUTO_USERS)]] == [
        (1, False), (1, True), (2, False), (2, True)
    ]  # fmt: skip
    assert len({s.group for s in plan.steps}) == 4 and plan.search
    fixed = Plan.from_varies([parse_vary("workers=1,2"), parse_vary("pool-max=5,10")])
    assert [s.label for s in fixed.steps] == [
        "1 worker · pool max 5", "1 worker · pool max 10", "2 workers · pool max 5", "2 workers · pool max 10"
    ]  # fmt: skip
    with pytest.raises(UsageError, match="twice"):
        Plan.from_varies([parse_vary("workers=1"), parse_vary("workers=2")])


def test_plan_refuses_steps_this_session_cannot_apply() -> None:
    with pytest.raises(UsageError, match="--vary workers needs an app loadtui starts"):
        Plan.from_varies([parse_vary("workers=1,2")]).check(RunConfig(host="http://127.0.0.1:9"))
    with pytest.raises(UsageError, match="--vary pool-max changes the sample app"):
        Plan.from_varies([parse_vary("pool-max=1,2")]).check(RunConfig(app="run {port}"))
    with pytest.raises(UsageError, match="plan step “4 workers · pool max 30”: 4 workers × pool max 30"):
        Plan.from_varies([parse_vary("workers=1,4"), parse_vary("pool-max=10,30")]).check(RunConfig(), 97)
    with pytest.raises(UsageError, match="pool-min 5 is above --pool-max 2"):
        Plan.from_varies([parse_vary("pool-max=2")]).check(RunConfig(pool_min=5, pool_max=10))
    Plan.from_varies([parse_vary("workers=1,2"), parse_vary("users=auto")]).check(RunConfig(), 97)


def test_without_slos_the_most_throughput_wins_unless_it_costs_latency() -> None:
    results = [
        step({"workers": 1}, seg(0, 100.0, p95=40.0)),
        step({"workers": 2}, seg(1, 190.0, p95=50.0)),
        step({"workers": 4}, seg(2, 200.0, p95=90.0)),  # +5% req/s for 1.8× the best p95: not a win
    ]
    verdict = choose(results, [])
    assert (verdict.segment, verdict.config, verdict.rps) == (1, {"workers": 2}, 190.0)
    assert verdict.why.startswith("2 workers: 190 req/s, p95 50 ms — the most req/s with p95 within 1.5×")


def test_failures_lose_to_a_clean_configuration() -> None:
    results = [step({"users": 50}, seg(0, 300.0, fail=3.0)), step({"users": 20}, seg(1, 200.0))]
    assert choose(results, []).segment == 1


def test_with_slos_the_most_throughput_meeting_every_slo_wins() -> None:
    slos = [parse_slo("p95 < 100 ms"), parse_slo("fail < 1 %")]
    results = [
        step({"workers": 1}, seg(0, 100.0, p95=80.0)),
        step({"workers": 2}, seg(1, 150.0, p95=95.0)),
        step({"workers": 4}, seg(2, 300.0, p95=120.0)),
    ]
    verdict = choose(results, slos)
    assert verdict.segment == 1 and "meeting p95 < 100 ms, fail < 1 %" in verdict.why
    assert verdict.slos == ["p95 < 100 ms", "fail < 1 %"]


def test_no_configuration_meeting_the_slos_has_no_winner_and_names_the_closest() -> None:
    slos = [parse_slo("p95 < 10 ms"), parse_slo("rps > 1000")]
    results = [step({"workers": 1}, seg(0, 100.0, p95=80.0)), step({"workers": 2}, seg(1, 1500.0, p95=95.0))]
    verdict = choose(results, slos)
    assert verdict.segment is None and verdict.config == {}
    assert verdict.why == "no configuration met the SLOs; closest: 2 workers, missed p95 < 10 ms (95 ms)"


def test_skipped_and_unmeasured_steps_do_not_win() -> None:
    results = [step({"workers": 1}, seg(0, 100.0)), step({"workers": 2}, seg(1, None, steady=0), "skipped")]
    assert choose(results, []).segment == 0
    assert choose([], []).segment is None


@pytest.mark.parametrize(
    ("top", "says"),
    [
        (seg(2, 206.0, cpu=190.0), "4 workers: +3% over 2 — CPU-bound on 2 cores (the app used 190%)"),
        (seg(2, 206.0, lg=97.0), "4 workers: +3% over 2 — the load generator is saturated (97% CPU)"),
        (seg(2, 206.0, findings=("db-connection-limit",)), "limited by db-connection-limit"),
    ],
)
def test_the_verdict_says_where_more_stops_helping_and_why(top: Segment, says: str) -> None:
    results = [step({"workers": 1}, seg(0, 100.0)), step({"workers": 2}, seg(1, 200.0)), step({"workers": 4}, top)]
    verdict = choose(results, [])
    assert verdict.segment == 2
    assert says in verdict.why


def test_more_that_keeps_paying_is_not_called_diminishing() -> None:
    results = [step({"workers": 1}, seg(0, 100.0)), step({"workers": 2}, seg(1, 200.0))]
    assert "over" not in choose(results, []).why


def test_the_knee_is_the_last_step_before_an_slo_breaks_or_throughput_stops_growing() -> None:
    slos = [parse_slo("p95 < 100 ms")]
    rising = [step({"users": u}, seg(i, 10.0 * u, p95=20.0 * (i + 1))) for i, u in enumerate((5, 10, 20, 40, 80))]
    found = knee(rising, slos)
    assert (found.value, found.stopped) == (40, True) and found.reason == "80 users missed p95 < 100 ms"
    flat = [step({"users": 5}, seg(0, 50.0)), step({"users": 10}, seg(1, 90.0)), step({"users": 20}, seg(2, 92.0))]
    found = knee(flat, [])
    assert (found.value, found.stopped) == (10, True) and "20 users added +2% req/s over 10 users" in found.reason
    going = knee(flat[:2], [])
    assert (going.value, going.stopped) == (10, False)
    assert knee([step({"users": 5}, seg(0, 50.0, p95=500.0))], slos).value is None


def rate_seg(index: int, target: float, achieved: float, p95: float = 20.0, dropped: float = 0.0) -> Segment:
    return dataclasses.replace(
        seg(index, achieved, p95=p95), target_rate=target, achieved_rate=achieved, dropped_rps=dropped
    )


def test_a_search_by_rate_stops_where_the_app_no_longer_finishes_its_arrivals() -> None:
    kept = [step({"rate": r}, rate_seg(i, r, r * 0.99)) for i, r in enumerate((10.0, 20.0, 40.0))]
    behind = step({"rate": 80.0}, rate_seg(3, 80.0, 74.0))  # 92.5%: below the 95% kept up with
    found = knee([*kept, behind], [])
    assert (found.value, found.stopped, found.searched) == (40.0, True, "rate")
    assert found.label == "40 req/s sustained"
    assert found.reason == "80 req/s: finished 74/s of 80/s"
    edge = step({"rate": 80.0}, rate_seg(3, 80.0, 76.0))  # exactly 95%: kept up with
    assert not knee([*kept, edge], []).stopped
    dropping = step({"rate": 80.0}, rate_seg(3, 80.0, 79.9, dropped=0.5))  # any dropped arrival: not sustained
    assert knee([*kept, dropping], []).value == 40.0
    # An SLO breaks first, even while the app keeps up; flat throughput is no reason to stop by rate.
    slow = step({"rate": 80.0}, rate_seg(3, 80.0, 80.0, p95=300.0))
    assert knee([*kept, slow], [parse_slo("p95 < 100 ms")]).reason == "80 req/s missed p95 < 100 ms"
    assert knee([step({"rate": 10.0}, rate_seg(0, 10.0, 2.0))], []).label == "none"


def test_vary_rate_takes_rates_or_auto() -> None:
    assert parse_vary("rate=50,100.5").values == (50.0, 100.5)
    auto = parse_vary("rate=auto")
    assert auto.auto and auto.values[0] == 10 and all(b == 2 * a for a, b in itertools.pairwise(auto.values))
    for bad in ("rate=0", "rate=-5", "rate=inf", "rate=nan", "rate=abc", "rate=²"):
        with pytest.raises(UsageError, match="requests per second above 0"):
            parse_vary(bad)
    with pytest.raises(UsageError, match="vary one"):
        Plan.from_varies([parse_vary("rate=10,20"), parse_vary("users=5,10")]).check(RunConfig())
    with pytest.raises(UsageError, match="vary one"):
        Plan.from_varies([parse_vary("users=5,10")]).check(RunConfig(rate=10.0))


def test_summary_says_whether_slos_were_met() -> None:
    def summary(**kw: Any) -> Summary:
        return Summary(t=1.0, seconds=1, requests=1, failures=0, segments=[], best_segment=None, findings=[],
                       failed=None, **kw)  # fmt: skip

    assert summary().slos_met
    assert summary(slo_checks=[SloCheck("p95 < 1 ms", 0, 2.0, False)]).slos_met is False
    assert summary(verdict=Verdict(None, {}, None, None, "none", slos=["p95 < 1 ms"])).slos_met is False
    assert summary(verdict=Verdict(1, {}, 1.0, 1.0, "won", slos=["p95 < 1 ms"])).slos_met
    assert summary(verdict=Verdict(None, {}, None, None, "no step was measured")).slos_met


def test_of_the_steps_that_miss_as_many_the_closest_misses_by_the_least() -> None:
    slos = [parse_slo("p95 < 75 ms")]
    results = [step({"workers": 1}, seg(0, 100.0, p95=80.0)), step({"workers": 2}, seg(1, 150.0, p95=76.0))]
    assert "closest: 2 workers, missed p95 < 75 ms (76 ms)" in choose(results, slos).why
    # Each miss as a share of its limit: 20% over on p95 weighs more than 10% under on req/s.
    slos = [parse_slo("p95 < 100 ms"), parse_slo("rps > 1000")]
    results = [step({"workers": 1}, seg(0, 1500.0, p95=120.0)), step({"workers": 2}, seg(1, 900.0, p95=50.0))]
    assert "closest: 2 workers" in choose(results, slos).why


def test_a_unicode_digit_in_a_vary_list_is_one_clear_line() -> None:
    with pytest.raises(UsageError, match="workers"):
        parse_vary("workers=1,²")
