"""The verdict's exact words and edges: what a sweep's reader is told, sentence for sentence.

test_verdict.py states the rules; these tables pin what each rule prints at its edges (a tie, exactly 1.5× the best
p95, a rate kept up with by 95%, 80% of every core, a step with no steady second), so a changed word or a flipped
comparison shows up as a failing row.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs

from loadtui.errors import UsageError
from loadtui.results.verdict import (
    TOO_SHORT,
    Knee,
    Slo,
    SloCheck,
    StepResult,
    Verdict,
    cause,
    check,
    choose,
    describe,
    diminishing,
    knee,
    miss,
    parse_slo,
    parse_vary,
    sustained,
)
from tests.helpers import refused
from tests.unit.test_verdict import seg


def step(changes: dict[str, Any], rps: float | None, p95: float | None = 50.0, **kw: Any) -> StepResult:
    rate = {k: kw.pop(k) for k in ("target_rate", "achieved_rate", "dropped_rps") if k in kw}
    return StepResult(changes, dataclasses.replace(seg(len(changes), rps, p95, **kw), **rate))


def rate_step(rate: float, achieved: float | None, dropped: float = 0.0, p95: float = 50.0) -> StepResult:
    return step({"rate": rate}, achieved, p95, target_rate=rate, achieved_rate=achieved, dropped_rps=dropped)


P95 = Slo("p95", 100.0)
RPS = Slo("rps", 500.0)


@pytest.mark.parametrize(
    ("results", "slos", "expected"),
    [
        ([], [], Verdict(None, {}, None, None, "no step was measured")),
        ([], [P95], Verdict(None, {}, None, None, "no step was measured", slos=["p95 < 100 ms"])),
        (
            [step({"workers": 1}, 100.0, steady=0), step({"workers": 2}, None)],
            [],
            Verdict(None, {}, None, None, "no step was measured"),
        ),
        (
            [step({"workers": 1}, 100.0, steady=1)],
            [],
            Verdict(
                1,
                {"workers": 1},
                100.0,
                50.0,
                "1 worker: 100 req/s, p95 50 ms — the most req/s with p95 within 1.5× of the best (50 ms)",
            ),
        ),
        (
            [step({"workers": 1}, 300.0, 150.0), step({"workers": 2}, 200.0, 120.0)],
            [P95, RPS],
            Verdict(
                None,
                {},
                None,
                None,
                "no configuration met the SLOs; closest: 2 workers, missed p95 < 100 ms "
                "(120 ms), rps > 500 req/s (200 req/s)",
                slos=["p95 < 100 ms", "rps > 500 req/s"],
            ),
        ),
        (
            [step({"workers": 1}, 100.0, 40.0), step({"workers": 2}, 200.0, 60.0), step({"workers": 4}, 300.0, 61.0)],
            [],
            Verdict(
                1,
                {"workers": 2},
                200.0,
                60.0,
                "2 workers: 200 req/s, p95 60 ms — the most req/s with p95 within "
                "1.5× of the best (40 ms); 2.00× the next best, 1 worker (100 req/s); 4 workers did 300 req/s but "
                "p95 61 ms, over 1.5× the best",
            ),
        ),
        (
            [step({"workers": 1}, 100.0, None), step({"workers": 2}, 150.0, None)],
            [],
            Verdict(
                1,
                {"workers": 2},
                150.0,
                None,
                "2 workers: 150 req/s, p95 — — the most req/s; 1.50× the next best, 1 worker (100 req/s)",
            ),
        ),
        (
            [step({"workers": 1}, 100.0, 40.0), step({"workers": 2}, 100.0, 30.0)],
            [],
            Verdict(
                1,
                {"workers": 2},
                100.0,
                30.0,
                "2 workers: 100 req/s, p95 30 ms — the most req/s with p95 within "
                "1.5× of the best (30 ms); 1.00× the next best, 1 worker (100 req/s); 2 workers: +0% over 1 — something "
                "else caps it (see the findings of that step)",
            ),
        ),
        (
            [step({"workers": 1}, 0.0, 50.0), step({"workers": 2}, 0.5, 50.0)],
            [],
            Verdict(
                1,
                {"workers": 2},
                0.5,
                50.0,
                "2 workers: 0 req/s, p95 50 ms — the most req/s with p95 within 1.5× of the best (50 ms)",
            ),
        ),
        (
            [step({"workers": 1}, 100.0), step({"workers": 2}, 200.0, fail=1.0)],
            [],
            Verdict(
                1,
                {"workers": 1},
                100.0,
                50.0,
                "1 worker: 100 req/s, p95 50 ms — the most req/s with p95 within "
                "1.5× of the best (50 ms); 2 workers did 200 req/s but failed 1.0/s",
            ),
        ),
        (
            [step({"workers": 1}, 100.0, fail=2.0), step({"workers": 2}, 200.0, fail=1.0)],
            [],
            Verdict(
                1,
                {"workers": 2},
                200.0,
                50.0,
                "2 workers: 200 req/s, p95 50 ms — the most req/s with p95 within "
                "1.5× of the best (50 ms); 2.00× the next best, 1 worker (100 req/s)",
            ),
        ),
        (
            [step({"workers": 1}, 600.0, 90.0), step({"workers": 2}, 700.0, 99.0), step({"workers": 4}, 900.0, 100.0)],
            [P95, RPS],
            Verdict(
                1,
                {"workers": 2},
                700.0,
                99.0,
                "2 workers: 700 req/s, p95 99 ms — the most req/s meeting "
                "p95 < 100 ms, rps > 500 req/s; 1.17× the next best, 1 worker (600 req/s); 4 workers did 900 req/s "
                "but missed p95 < 100 ms (100 ms)",
                slos=["p95 < 100 ms", "rps > 500 req/s"],
            ),
        ),
        (
            [rate_step(50, 50.0), rate_step(100, 100.0), rate_step(200, 150.0)],
            [],
            Verdict(
                1,
                {"rate": 100},
                100.0,
                50.0,
                "100 req/s: 100 req/s, p95 50 ms — the most req/s with p95 within "
                "1.5× of the best (50 ms), kept up with; 2.00× the next best, 50 req/s (50 req/s)",
            ),
        ),
        (
            [rate_step(100, 80.0), rate_step(200, 150.0)],
            [P95],
            Verdict(None, {}, None, None, "the app kept up with none of the rates; lower them", slos=["p95 < 100 ms"]),
        ),
    ],
)
def test_the_verdict_in_words(results: list[StepResult], slos: list[Slo], expected: Verdict) -> None:
    assert choose(results, slos, cores=2) == expected


@pytest.mark.parametrize(
    ("results", "why"),
    [
        (
            [step({"users": 1}, 100.0, 40.0), step({"users": 2}, 150.0, None)],
            "2 users: 150 req/s, p95 — — the most req/s with p95 within 1.5× of the best (40 ms); 1.50× the next best, "
            "1 user (100 req/s)",
        ),
        (
            [step({"users": 1}, 100.0, 0.5), step({"users": 2}, 100.0, None)],
            "2 users: 100 req/s, p95 — — the most req/s with p95 within 1.5× of the best (0.5 ms); 1.00× the next best, "
            "1 user (100 req/s); 2 users: +0% over 1 — something else caps it (see the findings of that step)",
        ),
        (
            [step({"scenario": "ping"}, 0.0), step({"scenario": "crud"}, 10.0, fail=1.0)],
            "scenario ping: 0 req/s, p95 50 ms — the most req/s with p95 within 1.5× of the best (50 ms); scenario "
            "crud did 10 req/s but failed 1.0/s",
        ),
        (
            [step({"workers": 2}, 200.0), step({"workers": 4}, 210.0, cpu=320.0)],
            "4 workers: 210 req/s, p95 50 ms — the most req/s with p95 within 1.5× of the best (50 ms); 1.05× the next "
            "best, 2 workers (200 req/s); 4 workers: +5% over 2 — CPU-bound on 4 cores (the app used 320%)",
        ),
    ],
)
def test_the_verdict_s_edges(results: list[StepResult], why: str) -> None:
    assert choose(results, [], cores=4).why == why


def test_a_step_with_a_rate_among_others_is_judged_by_what_it_kept_up_with() -> None:
    kept, missed = rate_step(100, 96.0), rate_step(200, 180.0)
    assert choose([missed, kept], [], cores=2).config == {"rate": 100}


@pytest.mark.parametrize(
    ("achieved", "dropped", "expected"),
    [(95.0, 0.0, True), (94.9, 0.0, False), (100.0, 0.1, False), (None, 0.0, False), (120.0, 0.0, True)],
)
def test_a_rate_is_sustained_from_95_percent_and_without_drops(
    achieved: float | None, dropped: float, expected: bool
) -> None:
    assert sustained(rate_step(100, achieved, dropped)) is expected


def test_the_rate_a_step_asked_for_counts_before_the_segment_s_target() -> None:
    asked = step({"rate": 100}, 60.0, target_rate=50.0, achieved_rate=60.0)
    assert not sustained(asked)


def test_a_step_that_names_no_rate_is_judged_by_the_segment_s_target() -> None:
    plain = step({"users": 10}, 50.0, target_rate=100.0, achieved_rate=96.0)
    assert sustained(plain)
    assert not sustained(dataclasses.replace(plain, segment=dataclasses.replace(plain.segment, achieved_rate=94.0)))
    no_target = step({"users": 10}, 50.0, achieved_rate=0.5)
    assert sustained(no_target)


@pytest.mark.parametrize(
    ("figures", "cores", "says"),
    [
        ({"cpu": 160.0}, 2, "CPU-bound on 2 cores (the app used 160%)"),
        ({"cpu": 80.0}, 1, "CPU-bound on 1 core (the app used 80%)"),
        ({"cpu": 159.0, "lg": 90.0}, 2, "the load generator is saturated (90% CPU)"),
        ({"cpu": 79.0, "lg": 89.0, "findings": ("pool-exhausted", "db-slow")}, 1, "limited by pool-exhausted, db-slow"),
        ({"cpu": 79.0, "lg": 89.0}, 1, "something else caps it (see the findings of that step)"),
    ],
)
def test_why_more_stopped_helping(figures: dict[str, Any], cores: int, says: str) -> None:
    assert cause(seg(1, 100.0, **figures), cores) == says


def test_diminishing_returns_name_the_step_the_gain_and_the_cause() -> None:
    line = [
        step({"workers": 1, "pool_max": 5}, 100.0),
        step({"workers": 2, "pool_max": 5}, 200.0),
        step({"workers": 4, "pool_max": 5}, 205.0, cpu=160.0),
        step({"workers": 3, "pool_max": 10}, 100.0),  # another pool: not on the workers' line
    ]
    assert diminishing(line, line[1], cores=2) == "4 workers: +2% over 2 — CPU-bound on 2 cores (the app used 160%)"
    assert (
        diminishing(line, line[1], cores=4) == "4 workers: +2% over 2 — something else caps it (see the findings "
        "of that step)"
    )
    assert diminishing(line[:2], line[1], cores=2) == ""
    unmeasured = [step({"workers": 1}, 0.0), step({"workers": 2}, 100.0), step({"workers": 4}, 101.0)]
    assert diminishing(unmeasured, unmeasured[2], cores=2).startswith("4 workers: +1% over 2 — ")


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({}, "as started"),
        ({"workers": 1}, "1 worker"),
        ({"workers": 3, "users": 10}, "3 workers · 10 users"),
        ({"users": 1}, "1 user"),
        ({"rate": 12.5}, "12.5 req/s"),
        ({"access_log": True}, "access log on"),
        ({"access_log": False}, "access log off"),
        ({"db_mode": "pool"}, "pool"),
        ({"db_mode": "per-request"}, "conn/request"),
        ({"pool_max": 8, "pool_min": 2}, "pool max 8 · pool min 2"),
        ({"scenario": "ping"}, "scenario ping"),
    ],
)
def test_a_step_in_words(changes: dict[str, Any], words: str) -> None:
    assert describe(changes) == words


@pytest.mark.parametrize(
    ("text", "values"),
    [
        ("access-log=on,off", (True, False)),
        ("access-log=TRUE,no", (True, False)),
        ("access-log=yes,false", (True, False)),
        ("rate=0.5,2", (0.5, 2.0)),
        ("pool-min=0,1", (0, 1)),
    ],
)
def test_vary_values_in_every_spelling(text: str, values: tuple[Any, ...]) -> None:
    assert parse_vary(text).values == values


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("rate=0", "--vary rate: '0' is not a number of requests per second above 0; e.g. --vary rate=100,200,400 or "
         "rate=auto"),
        ("rate=٣", "--vary rate: '٣' is not a number of requests per second above 0; e.g. --vary rate=100,200,400 or "
         "rate=auto"),
        ("users=0", "--vary users: '0' is not a whole number ≥ 1; e.g. --vary users=1,2,4 or users=auto"),
        ("workers=x", "--vary workers: 'x' is not a whole number ≥ 1; e.g. --vary workers=1,2,4"),
        ("pool-min=-1", "--vary pool-min: '-1' is not a whole number ≥ 0; e.g. --vary pool-min=1,2,4"),
        ("access-log=maybe", "--vary access-log: 'maybe' is not on or off; e.g. --vary access-log=off,on"),
        ("db-mode=pooled", "--vary db-mode: 'pooled' is not pool or per-request"),
        ("nope=1", "--vary 'nope=1': expected KEY=V1,V2,… with KEY one of workers, users, rate, pool-min, pool-max, "
         "db-mode, access-log, scenario, e.g. --vary workers=1,2,4"),
        ("workers=1=2", "--vary workers: '1=2' is not a whole number ≥ 1; e.g. --vary workers=1,2,4"),
    ],
)  # fmt: skip
def test_a_bad_vary_value_is_one_exact_line(text: str, message: str) -> None:
    assert refused(lambda: parse_vary(text)) == message


def test_an_unknown_scenario_lists_the_scenarios() -> None:
    with pytest.raises(UsageError) as caught:
        parse_vary("scenario=nope")
    assert str(caught.value).startswith("--vary scenario: unknown scenario 'nope'; choose from crud, ping, ")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("p95 > 100", "--slo 'p95 > 100': p95 takes `< N ms`; use p50|p95|p99 < N ms, fail < N %, or rps > N, e.g. "
         "--slo 'p95 < 100 ms'"),
        ("rps < 5", "--slo 'rps < 5': rps takes `> N`; use p50|p95|p99 < N ms, fail < N %, or rps > N, e.g. "
         "--slo 'p95 < 100 ms'"),
        ("rps > 5 ms", "--slo 'rps > 5 ms': rps takes `> N`; use p50|p95|p99 < N ms, fail < N %, or rps > N, e.g. "
         "--slo 'p95 < 100 ms'"),
        ("fast", "--slo 'fast' is not an objective; use p50|p95|p99 < N ms, fail < N %, or rps > N, e.g. "
         "--slo 'p95 < 100 ms'"),
    ],
)  # fmt: skip
def test_a_bad_slo_is_one_exact_line(text: str, message: str) -> None:
    assert refused(lambda: parse_slo(text)) == message


@pytest.mark.parametrize(
    ("slo", "value", "shown"),
    [
        (Slo("fail", 1.0), 0.25, "0.25 %"),
        (Slo("p95", 100.0), 1234.4, "1,234 ms"),
        (Slo("rps", 500.0), 812.0, "812 req/s"),
        (Slo("p95", 100.0), None, "not measured"),
    ],
)
def test_a_figure_in_its_objective_s_unit(slo: Slo, value: float | None, shown: str) -> None:
    assert slo.show(value) == shown


def test_failures_are_a_share_of_requests_and_none_when_nothing_ran() -> None:
    fail = Slo("fail", 1.0)
    assert fail.measure(seg(1, 200.0, fail=3.0)) == 1.5
    assert fail.measure(seg(1, 200.0)) == 0.0
    assert fail.measure(seg(1, 0.0, fail=3.0)) == 0.0
    assert fail.measure(seg(1, None)) is None


def test_how_far_a_step_misses_is_the_sum_of_its_shares() -> None:
    slos = [Slo("p95", 100.0), Slo("rps", 500.0)]
    assert miss(seg(1, 400.0, 150.0), slos) == pytest.approx(0.5 + 0.2)
    assert miss(seg(1, 600.0, 50.0), slos) == 0.0
    assert miss(seg(1, 400.0, 50.0), slos) == pytest.approx(0.2)
    assert miss(seg(1, 600.0, None), slos) == float("inf")
    assert miss(seg(1, 600.0, 50.0), [Slo("p95", 0.0)]) == float("inf")


@pytest.mark.parametrize(
    ("checked", "line"),
    [
        (SloCheck("p95 < 100 ms", 2, 80.5, True), "p95 < 100 ms: met (80.5, segment 2)"),
        (SloCheck("p95 < 100 ms", 0, 1200.0, False), "p95 < 100 ms: MISSED (1,200, segment 0)"),
        (SloCheck("fail < 1 %", 1, 0.25, True), "fail < 1 %: met (0.25, segment 1)"),
        (SloCheck("p95 < 100 ms", -1, None, False), f"p95 < 100 ms: MISSED (—, {TOO_SHORT})"),
    ],
)
def test_an_slo_check_in_words(checked: SloCheck, line: str) -> None:
    assert str(checked) == line


def test_checks_round_to_hundredths_and_skip_segments_without_a_steady_second() -> None:
    segs = [seg(1, 100.0, 80.123), seg(2, 100.0, 50.0, steady=0), seg(3, None), seg(4, 100.0, 120.0, steady=1),
            seg(5, 100.0, None)]  # fmt: skip
    assert check(segs, [P95]) == [
        SloCheck("p95 < 100 ms", 1, 80.12, True),
        SloCheck("p95 < 100 ms", 4, 120.0, False),
        SloCheck("p95 < 100 ms", 5, None, False),
    ]
    assert check([seg(1, 100.0, steady=0)], [P95, RPS]) == [
        SloCheck("p95 < 100 ms", -1, None, False),
        SloCheck("rps > 500 req/s", -1, None, False),
    ]


@pytest.mark.parametrize(
    ("results", "slos", "expected"),
    [
        (
            [step({"users": 10}, 100.0), step({"users": 20}, 190.0), step({"users": 40}, 199.0)],
            [],
            Knee(20.0, "40 users added +5% req/s over 20 users", True),
        ),
        (
            [step({"users": 10}, 100.0), step({"users": 20}, 190.0, 120.0, fail=0.0)],
            [P95, Slo("fail", 1.0)],
            Knee(10.0, "20 users missed p95 < 100 ms", True),
        ),
        (
            [step({"users": 10}, 100.0, 150.0, fail=5.0)],
            [P95, Slo("fail", 1.0)],
            Knee(None, "10 users missed p95 < 100 ms, fail < 1 %", True),
        ),
        (
            [step({"users": 10}, 100.0), step({"users": 20}, 200.0)],
            [],
            Knee(20.0, "every step met the objectives and still added throughput", False),
        ),
        (
            [rate_step(10, 10.0), rate_step(20, 15.0)],
            [],
            Knee(10.0, "20 req/s: finished 15/s of 20/s", True, "rate"),
        ),
        (
            [rate_step(10, None)],
            [],
            Knee(None, "10 req/s: finished nothing of 10/s", True, "rate"),
        ),
        (
            [step({"rate": 10}, 10.0, achieved_rate=10.0), step({"rate": 20}, 12.0, achieved_rate=12.0)],
            [],
            Knee(10.0, "20 req/s: finished 12/s of 20/s", True, "rate"),
        ),
    ],
)
def test_the_knee_in_words(results: list[StepResult], slos: list[Slo], expected: Knee) -> None:
    assert knee(results, slos) == expected


@pytest.mark.parametrize(
    ("found", "label"),
    [(Knee(None, "", True), "none"), (Knee(80.0, "", True), "80 users"), (Knee(640.0, "", True, "rate"),
                                                                         "640 req/s sustained")],
)  # fmt: skip
def test_a_knee_s_label(found: Knee, label: str) -> None:
    assert found.label == label


def test_a_summary_without_drops_says_none_were_dropped() -> None:
    from loadtui.results.summary import Summary

    plain = Summary(t=1.0, seconds=1, requests=0, failures=0, segments=[], best_segment=None, findings=[], failed=None)
    assert (plain.to_dict()["stats_rejected"], plain.to_dict()["remote_dropped"], plain.slos_met) == (0, 0, True)


@given(
    hs.lists(
        hs.tuples(
            hs.floats(0, 5000, allow_nan=False),
            hs.one_of(hs.none(), hs.floats(0.1, 2000, allow_nan=False)),
            hs.sampled_from([0.0, 0.0, 1.0]),
        ),
        min_size=2,
        max_size=6,
    ),
    hs.booleans(),
)
@settings(max_examples=200, deadline=None)
def test_the_winner_is_never_below_its_next_best_and_a_step_with_more_says_why_it_lost(
    figures: list[tuple[float, float | None, float]], with_slo: bool
) -> None:
    results = [step({"workers": i + 1}, rps, p95, fail=fail) for i, (rps, p95, fail) in enumerate(figures)]
    verdict = choose(results, [parse_slo("p95 < 100 ms")] if with_slo else [])
    for ratio in re.findall(r"([0-9.]+)× the next best", verdict.why):
        assert float(ratio) >= 1.0, verdict.why
    if verdict.rps is not None:
        more = [r for r in results if (r.segment.rps or 0.0) > verdict.rps]
        assert ("did " in verdict.why) == bool(more), verdict.why
        assert "but failed 0.0/s" not in verdict.why  # a step that lost says a reason it really has
