"""Two runs compared: the block bootstrap on synthetic series with known differences (autocorrelated ones too), the
verdicts and the gate, and the reasons a comparison cannot be trusted."""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path
from typing import Any

import pytest

from loadtui.config import RunConfig
from loadtui.model import Finding, Tick
from loadtui.results.compare import (
    Baseline,
    MeanEstimate,
    compare,
    compare_series,
    format_comparison,
    lag1_autocorrelation,
    parse_percent,
    t_quantile,
)
from loadtui.results.recorder import SessionLog
from loadtui.results.segments import Row
from tests.helpers import tick

MACHINE = {"cpu_count": 2, "memory_bytes": 24 * 2**30}
VERSIONS = {"loadtui": "0.1.0", "locust": "2.47.0"}


def ar1(n: int, mean: float, sd: float, rho: float, rng: random.Random) -> list[float]:
    """An autocorrelated series: each second leans on the one before (as a run's seconds do)."""
    out, x = [], 0.0
    for _ in range(n):
        x = rho * x + rng.gauss(0, sd * (1 - rho**2) ** 0.5)
        out.append(mean + x)
    return out


def test_autocorrelation_widens_the_variance_of_the_mean() -> None:
    rng = random.Random(1)
    independent = [rng.gauss(100, 5) for _ in range(60)]
    sticky = ar1(60, 100, 5, 0.8, rng)
    assert lag1_autocorrelation(independent) < 0.3 < 0.5 < lag1_autocorrelation(sticky)
    assert lag1_autocorrelation([1.0] * 30) == 0.0  # constant: nothing to lean on
    loose, tight = MeanEstimate.of(sticky), MeanEstimate.of(independent)
    assert loose.effective_n < 20 < tight.effective_n  # 60 sticky seconds hold the information of far fewer


def test_the_t_quantile_matches_the_tables() -> None:
    for df, table_value in ((3, 3.182), (10, 2.228), (30, 2.042), (1e9, 1.960)):
        assert t_quantile(0.975, df) == pytest.approx(table_value, rel=0.01)


def test_a_known_slowdown_is_found_and_its_interval_holds_it() -> None:
    rng = random.Random(2)
    base = ar1(30, 1000, 60, 0.5, rng)
    new = [x * 0.8 for x in ar1(30, 1000, 60, 0.5, rng)]
    c = compare_series(base, new)
    assert c.significant and c.low < -0.2 < c.high and c.high < 0
    assert -0.25 < c.point < -0.15


@pytest.mark.parametrize(("rho", "seconds"), [(0.0, 20), (0.3, 40), (0.7, 20), (0.7, 40), (0.85, 80)])
def test_identical_runs_are_flagged_at_the_rate_the_level_promises(rho: float, seconds: int) -> None:
    """A/A on autocorrelated seconds: about 5% of pairs flagged (at most 8% of 600 here); treating the seconds as
    independent flags several times as many once they are correlated — noise read as a change."""
    rng = random.Random(int(rho * 100) + seconds)
    pairs = [(ar1(seconds, 500, 40, rho, rng), ar1(seconds, 500, 40, rho, rng)) for _ in range(600)]
    flagged = sum(compare_series(a, b).significant for a, b in pairs) / len(pairs)
    naive = sum(compare_series(a, b, ignore_rho=True).significant for a, b in pairs) / len(pairs)
    assert flagged <= 0.08, flagged
    if rho >= 0.7:
        assert naive >= 3 * max(flagged, 0.05), (naive, flagged)


def test_a_ten_percent_slowdown_is_usually_caught_in_20_seconds() -> None:
    rng = random.Random(3)
    caught = sum(
        compare_series(ar1(20, 500, 20, 0.5, rng), [x * 0.9 for x in ar1(20, 500, 20, 0.5, rng)]).significant
        for _ in range(200)
    )
    assert caught >= 150, caught  # 4% noise, autocorrelated: three in four 10% slowdowns show in 20 s


def test_failures_are_compared_in_percentage_points() -> None:
    c = compare_series([0.0] * 20, [2.0, 3.0] * 10, relative=False)
    assert c.point == pytest.approx(2.5) and c.significant and not c.relative


# -- whole runs --------------------------------------------------------------------------------------------------


def run(
    tmp: Path,
    rps: float,
    *,
    name: str = "run",
    seconds: int = 25,
    seed: int = 0,
    p50: float = 20.0,
    machine: dict[str, Any] | None = None,
    users: int = 50,
    disturbed: bool = False,
) -> SessionLog:
    """A recorded run of one configuration: `rps` ± 2% a second, p50/p95 in step."""
    rng = random.Random(seed)
    config = RunConfig(users=users)
    ticks: list[Tick] = []
    for i in range(seconds):
        r = rps * (1 + rng.gauss(0, 0.02))
        k = tick(float(i + 1), rps=r, p50=p50 * 1000 / r, p95=2 * p50 * 1000 / r, users=users)  # closed loop
        if disturbed and i > 5:
            k = dataclasses.replace(k, findings=[Finding("measurement-disturbed", "warning", "other", "stress 95%")])
        ticks.append(k)
    header = {"config": config.to_dict(), "machine": machine or MACHINE, "versions": VERSIONS}
    return SessionLog(tmp / f"{name}.jsonl", header, ticks)


def test_a_run_20_percent_slower_is_a_regression_beyond_10(tmp_path: Path) -> None:
    result = compare(run(tmp_path, 1000, name="base"), run(tmp_path, 800, name="new", seed=1), 10.0)
    assert not result.untrusted and len(result.segments) == 1
    figures = {f.figure: f for f in result.segments[0].figures}
    assert figures["req/s"].verdict == "slower" and figures["req/s"].regression
    assert figures["p50"].verdict == "slower" and figures["fail %"].verdict == "no significant difference"
    assert "REGRESSION beyond 10%" in result.verdict and result.regressions
    text = format_comparison(result, "base.jsonl", "new.jsonl")
    assert "req/s" in text and "-19.9%" in text and "REGRESSION" in text


def test_a_significant_change_within_the_limit_passes_the_gate(tmp_path: Path) -> None:
    result = compare(run(tmp_path, 1000, name="base"), run(tmp_path, 800, name="new", seed=1), 30.0)
    rps = next(f for f in result.segments[0].figures if f.figure == "req/s")
    assert rps.verdict == "slower" and not rps.regression
    assert result.regressions == [] and result.verdict.startswith("no regression beyond 30%; significant: req/s")


def test_a_change_within_the_runs_own_wander_is_no_significant_difference(tmp_path: Path) -> None:
    """5% fewer requests/s is well outside one run's seconds' noise, but two runs of one app wander that much."""
    result = compare(run(tmp_path, 1000, name="base"), run(tmp_path, 950, name="new", seed=1), 10.0)
    rps = next(f for f in result.segments[0].figures if f.figure == "req/s")
    assert rps.verdict == "no significant difference" and rps.change is not None
    assert rps.change.low < 0 < rps.change.high and rps.change.point == pytest.approx(-0.05, abs=0.01)


def test_the_same_run_twice_shows_no_significant_difference(tmp_path: Path) -> None:
    result = compare(run(tmp_path, 1000, name="base"), run(tmp_path, 1000, name="new", seed=1))
    assert result.verdict == "no significant difference"


@pytest.mark.parametrize(
    ("new", "reason"),
    [
        ({"machine": {"cpu_count": 8, "memory_bytes": 24 * 2**30}}, "another machine (cores: 2 → 8)"),
        ({"users": 60}, "no configuration was measured by both runs"),
    ],
)
def test_a_comparison_that_cannot_be_trusted_says_why_and_gives_no_verdict(
    tmp_path: Path, new: dict[str, Any], reason: str
) -> None:
    result = compare(run(tmp_path, 1000, name="base"), run(tmp_path, 500, name="new", **new))
    assert reason in result.verdict and result.verdict.startswith("no verdict") and result.regressions == []


def test_too_few_seconds_or_a_disturbed_run_gets_no_verdict(tmp_path: Path) -> None:
    short = compare(run(tmp_path, 1000, name="base"), run(tmp_path, 500, name="new", seconds=12))
    assert "too few steady seconds" in str(short.segments[0].untrusted) and short.regressions == []
    noisy = compare(run(tmp_path, 1000, name="base"), run(tmp_path, 500, name="new", disturbed=True))
    assert "the new run's measurement was disturbed" in str(noisy.segments[0].untrusted)
    assert noisy.verdict.startswith("no verdict")


@pytest.mark.parametrize(("text", "value"), [("10%", 10.0), ("7.5", 7.5), (" 0 % ", 0.0)])
def test_max_regression_reads_a_percentage(text: str, value: float) -> None:
    assert parse_percent(text) == value


@pytest.mark.parametrize("text", ["ten", "-5%", "nan", "1e9"])
def test_a_bad_max_regression_says_what_it_takes(text: str) -> None:
    with pytest.raises(ValueError, match="--max-regression takes a percentage"):
        parse_percent(text)


def test_the_dashboard_line_shows_the_live_figures_against_the_baseline(tmp_path: Path) -> None:
    baseline = Baseline(run(tmp_path, 1000, name="base"))
    live = [Row.of(tick(float(i), rps=900.0, p50=22.0, users=50)) for i in range(Baseline.LIVE_S)]
    assert baseline.line(RunConfig(users=50), live[:3]) == "vs base.jsonl: measuring (3 of 10 s)"
    line = baseline.line(RunConfig(users=50), live)
    assert line.startswith("vs base.jsonl: req/s -10%") and "p50 +" in line
    assert "not in the baseline" in baseline.line(RunConfig(users=60), live)
