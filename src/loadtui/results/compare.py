"""Did it get slower? Two recorded sessions compared segment by segment, with intervals that tell a change from noise.

Segments are matched by configuration (the same users, workers, scenario, pool... in both). For each figure —
requests/s, p50, p95, p99, failures, CPU per request — the change is the ratio of the two runs' means over their
steady seconds, with a 95% interval. Seconds are autocorrelated (a slow second is followed by slow seconds), so each
mean's variance is the series' long-run variance — s² / n × (1 + ρ) / (1 − ρ), ρ its lag-1 autocorrelation corrected
for the bias of short series — and the interval is Student's t on the log of the ratio, with Welch's degrees of
freedom over the effective seconds. Measured on series built like a run's seconds (tests/unit/test_compare.py), it
flags 3–7% of identical pairs from 15 to 80 seconds and ρ up to 0.85; treating the seconds as independent, or a block
bootstrap of 20–40 seconds, flags 20–30% at ρ = 0.7. A figure is *slower*/*faster* only when its whole interval is on
one side of no change.

A comparison that cannot be trusted — another machine, other versions of the tools, no matching configuration, too
few steady seconds, a disturbed measurement — says why instead of giving a verdict.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any, Literal

from loadtui.config import RunConfig
from loadtui.results.recorder import SessionLog
from loadtui.results.segments import Row, label, steady_rows

MIN_STEADY_S = 10
"""Steady seconds a segment needs in both runs before its figures are compared."""

LEVEL = 0.95
"""The intervals' confidence level."""

EXIT_REGRESSION = 4
"""The exit status of `loadtui compare` and of headless `--baseline` when a figure regressed beyond the limit."""

DEFAULT_MAX_REGRESSION = 10.0
"""`--max-regression`, percent: a figure significantly worse by more than this fails the gate (exit status 4)."""

FAIL_POINTS = 1.0
"""Failures regress when their share rises significantly by at least this many percentage points."""

RUN_TO_RUN: dict[str, float] = {"req/s": 0.04, "p50": 0.03, "p95": 0.07, "p99": 0.15, "CPU/request": 0.04}
"""How much a figure's mean wanders from one run to the next of the same configuration, beyond the noise of its own
seconds (standard deviation on the log scale). The same command run six times on a 2-core machine wandered this much
(bench/baseline_gate.py): the machine's state (other work, caches, frequency) changes between runs, not within one.
Without it, a run's own seconds make intervals so narrow that two runs of the same app differ "significantly"."""

MATCHED_FIELDS = (
    "workers",
    "users",
    "spawn_rate",
    "scenario",
    "locustfile",
    "pool_min",
    "pool_max",
    "pool_timeout",
    "db_mode",
    "access_log",
    "sleep_ms",
    "app",
    "host",
    "loadgen_processes",
)
"""What makes two segments the same configuration (paths of logs, ports and such do not)."""

Verdict = Literal["faster", "slower", "no significant difference", "not measured"]


@dataclass(frozen=True)
class Figure:
    """A per-second figure the comparison reads from a second's row."""

    name: str
    unit: str
    higher_is_better: bool
    value: Callable[[Row], float | None]


def _fail_percent(row: Row) -> float | None:
    return 100.0 * row.fail_rps / row.rps if row.rps > 0 else None


def _cpu_ms(row: Row) -> float | None:
    """Milliseconds of the workers' CPU per request."""
    if row.app_cpu_percent is None or row.rps <= 0:
        return None
    return row.app_cpu_percent / 100 / row.rps * 1000


FIGURES: tuple[Figure, ...] = (
    Figure("req/s", "", True, lambda r: r.rps),
    Figure("p50", " ms", False, lambda r: r.p50),
    Figure("p95", " ms", False, lambda r: r.p95),
    Figure("p99", " ms", False, lambda r: r.p99),
    Figure("fail %", " %", False, _fail_percent),
    Figure("CPU/request", " ms", False, _cpu_ms),
)


# -- the statistics ----------------------------------------------------------------------------------------------


def lag1_autocorrelation(xs: Sequence[float]) -> float:
    """The correlation of each second with the next, corrected for its bias in short series (Kendall: the plain
    estimate falls short by about (1 + 3ρ) / n), kept between 0 and 0.95; 0 for a constant or too short series."""
    n = len(xs)
    if n < 3:
        return 0.0
    mean = statistics.fmean(xs)
    var = sum((x - mean) ** 2 for x in xs)
    if var == 0:
        return 0.0
    rho = sum((xs[i] - mean) * (xs[i + 1] - mean) for i in range(n - 1)) / var
    return min(0.95, max(0.0, rho + (1 + 3 * rho) / n))


@dataclass(frozen=True)
class MeanEstimate:
    """A series' mean with the variance of that mean, allowing for its autocorrelation."""

    mean: float
    variance: float
    """Variance of the mean: s² / n × (1 + ρ) / (1 − ρ), the long-run variance of an AR(1) series."""
    effective_n: float
    """Seconds' worth of independent information: n × (1 − ρ) / (1 + ρ)."""

    @classmethod
    def of(cls, xs: Sequence[float]) -> MeanEstimate:
        n = len(xs)
        rho = lag1_autocorrelation(xs)
        inflation = (1 + rho) / (1 - rho)
        s2 = statistics.variance(xs) if n > 1 else 0.0
        return cls(statistics.fmean(xs), s2 / n * inflation, max(2.0, n / inflation))


def t_quantile(p: float, df: float) -> float:
    """Student's t quantile (Cornish-Fisher expansion around the normal one: within 1% for df ≥ 3)."""
    z = NormalDist().inv_cdf(p)
    g1 = (z**3 + z) / 4
    g2 = (5 * z**5 + 16 * z**3 + 3 * z) / 96
    g3 = (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384
    return z + g1 / df + g2 / df**2 + g3 / df**3


@dataclass(frozen=True)
class Change:
    """NEW against BASE for one figure: the ratio of means and its interval (or the difference, for failures)."""

    base: float
    new: float
    point: float
    """new / base − 1 (for failures: new − base, in percentage points)."""
    low: float
    high: float
    relative: bool = True

    @property
    def significant(self) -> bool:
        """The whole interval is on one side of no change."""
        return self.low > 0 or self.high < 0


def compare_series(
    base: Sequence[float],
    new: Sequence[float],
    *,
    relative: bool = True,
    ignore_rho: bool = False,
    run_sd: float = 0.0,
) -> Change:
    """The change from `base` to `new` with its interval: the ratio of the means on a log scale (or their difference
    when not `relative`), its standard error from each mean's autocorrelation-corrected variance, and Student's t
    with Welch's degrees of freedom over the effective seconds. `run_sd`: how much one run's mean wanders from
    another's on the log scale, beyond its own seconds' noise (each run adds it once). `ignore_rho` treats the seconds
    as independent (for the tests that show why it must not)."""
    b = MeanEstimate.of(base) if not ignore_rho else _independent(base)
    n = MeanEstimate.of(new) if not ignore_rho else _independent(new)
    if relative:
        if b.mean <= 0 or n.mean <= 0:
            raise ValueError("a ratio needs two positive means")
        terms = (b.variance / b.mean**2, n.variance / n.mean**2)
        center = math.log(n.mean / b.mean)
    else:
        terms = (b.variance, n.variance)
        center = n.mean - b.mean
    se = math.sqrt(sum(terms) + 2 * run_sd**2)
    denominator = sum(t**2 / (e.effective_n - 1) for t, e in zip(terms, (b, n), strict=True))
    df = sum(terms) ** 2 / denominator if denominator > 0 else 1e9
    half = t_quantile(1 - (1 - LEVEL) / 2, max(1.0, df)) * se
    if relative:
        return Change(b.mean, n.mean, n.mean / b.mean - 1, math.exp(center - half) - 1, math.exp(center + half) - 1)
    return Change(b.mean, n.mean, center, center - half, center + half, relative=False)


def _independent(xs: Sequence[float]) -> MeanEstimate:
    n = len(xs)
    return MeanEstimate(statistics.fmean(xs), (statistics.variance(xs) if n > 1 else 0.0) / n, float(n))


# -- segments and runs -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FigureChange:
    """One figure of one matched segment, judged."""

    figure: str
    unit: str
    change: Change | None
    verdict: Verdict
    regression: bool = False
    """Significantly worse by more than the allowed regression."""

    def row(self) -> list[str]:
        """The table's cells: figure, base, new, change, interval, verdict."""
        c = self.change
        if c is None:
            return [self.figure, "—", "—", "", "", self.verdict]
        if c.relative:
            change = f"{c.point:+.1%}"
            interval = f"[{c.low:+.1%}, {c.high:+.1%}]"
        else:
            change = f"{c.point:+.2f} pt"
            interval = f"[{c.low:+.2f}, {c.high:+.2f}]"
        verdict = self.verdict + (" — REGRESSION" if self.regression else "")
        return [self.figure, _num(c.base, self.unit), _num(c.new, self.unit), change, interval, verdict]


def _num(value: float, unit: str) -> str:
    digits = 2 if abs(value) < 10 else 0
    return f"{value:,.{digits}f}{unit}"


@dataclass(frozen=True)
class SegmentComparison:
    """A configuration both runs measured."""

    label: str
    base_seconds: int
    new_seconds: int
    figures: list[FigureChange] = field(default_factory=list)
    untrusted: str | None = None
    """Why this segment gets no verdict (too few steady seconds, a disturbed measurement), or None."""


@dataclass(frozen=True)
class Comparison:
    """Two runs compared: per matched segment, and whether the result can be trusted at all."""

    segments: list[SegmentComparison]
    untrusted: list[str]
    """Why the two runs cannot be compared (machine, versions, nothing matched); empty when they can."""
    max_regression: float
    unmatched: list[str] = field(default_factory=list)
    """Configurations only one run measured."""

    @property
    def regressions(self) -> list[tuple[str, FigureChange]]:
        """(segment, figure) pairs significantly worse beyond the allowed regression, when the comparison holds."""
        if self.untrusted:
            return []
        return [(s.label, f) for s in self.segments if s.untrusted is None for f in s.figures if f.regression]

    @property
    def verdict(self) -> str:
        """One line: the regressions, or what changed significantly, or why there is no verdict."""
        if self.untrusted:
            return "no verdict — the comparison cannot be trusted: " + "; ".join(self.untrusted)
        judged = [s for s in self.segments if s.untrusted is None]
        if not judged:
            return "no verdict — no configuration has enough trustworthy seconds in both runs"
        regressions = self.regressions
        if regressions:
            worst = ", ".join(f"{f.figure} {f.row()[3]}" for _, f in regressions)
            return f"REGRESSION beyond {self.max_regression:g}%: {worst} (exit status 4)"
        changed = [
            f"{f.figure} {f.row()[3]} ({f.verdict})"
            for s in judged
            for f in s.figures
            if f.change and f.change.significant
        ]
        if changed:
            return f"no regression beyond {self.max_regression:g}%; significant: " + ", ".join(changed)
        return "no significant difference"


def key(config: dict[str, Any]) -> tuple[Any, ...]:
    """What two segments must share to be compared."""
    return tuple(config.get(f) for f in MATCHED_FIELDS)


def steady_by_segment(log: SessionLog) -> list[tuple[RunConfig, list[Row]]]:
    """Each segment's configuration and steady seconds, in order."""
    configs = log.segment_configs()
    groups: dict[int, list[Row]] = {}
    for tick in log.ticks:
        groups.setdefault(tick.segment, []).append(Row.of(tick))
    out = []
    for index in sorted(groups):
        config = configs.get(index, log.config)
        out.append((config, steady_rows(groups[index], config)))
    return out


def _machine_and_versions(base: SessionLog, new: SessionLog) -> list[str]:
    reasons = []
    bm, nm = base.header.get("machine") or {}, new.header.get("machine") or {}
    for k, what in (("cpu_count", "cores"), ("memory_bytes", "memory")):
        if bm.get(k) != nm.get(k):
            reasons.append(f"another machine ({what}: {bm.get(k)} → {nm.get(k)})")
    bv, nv = base.header.get("versions") or {}, new.header.get("versions") or {}
    differ = [
        f"{name} {bv.get(name)} → {nv.get(name)}" for name in sorted(set(bv) | set(nv)) if bv.get(name) != nv.get(name)
    ]
    if differ:
        reasons.append("other versions of the tools (" + ", ".join(differ) + ")")
    return reasons


def compare_segment(
    config: RunConfig, base: Sequence[Row], new: Sequence[Row], max_regression: float
) -> SegmentComparison:
    """One matched configuration: each figure's change and verdict, or why there is none."""
    name = label(config)
    if min(len(base), len(new)) < MIN_STEADY_S:
        return SegmentComparison(
            name,
            len(base),
            len(new),
            untrusted=f"too few steady seconds ({len(base)} and {len(new)}; {MIN_STEADY_S} needed in each): run longer",
        )
    disturbed = [
        who for who, rows in (("base", base), ("new", new)) if any("measurement-disturbed" in r.findings for r in rows)
    ]
    if disturbed:
        return SegmentComparison(
            name,
            len(base),
            len(new),
            untrusted=f"the {' and '.join(disturbed)} run's measurement was disturbed (another program on the cores)",
        )
    figures = []
    for fig in FIGURES:
        xs = [v for r in base if (v := fig.value(r)) is not None]
        ys = [v for r in new if (v := fig.value(r)) is not None]
        relative = fig.name != "fail %"
        if min(len(xs), len(ys)) < MIN_STEADY_S or (relative and min(statistics.fmean(xs), statistics.fmean(ys)) <= 0):
            figures.append(FigureChange(fig.name, fig.unit, None, "not measured"))
            continue
        change = compare_series(xs, ys, relative=relative, run_sd=RUN_TO_RUN.get(fig.name, 0.0))
        worse = change.point > 0 if not fig.higher_is_better else change.point < 0
        verdict: Verdict = "no significant difference"
        if change.significant:
            verdict = "slower" if worse else "faster"
            if fig.name == "fail %":
                verdict = "slower" if worse else "faster"
        beyond = change.point >= FAIL_POINTS if not relative else abs(change.point) * 100 > max_regression
        figures.append(
            FigureChange(fig.name, fig.unit, change, verdict, regression=change.significant and worse and beyond)
        )
    return SegmentComparison(name, len(base), len(new), figures)


def compare(base: SessionLog, new: SessionLog, max_regression: float = DEFAULT_MAX_REGRESSION) -> Comparison:
    """Two recorded sessions, segment by matched segment."""
    reasons = _machine_and_versions(base, new)
    new_segments = steady_by_segment(new)
    used: set[int] = set()
    compared: list[SegmentComparison] = []
    unmatched: list[str] = []
    for config, rows in steady_by_segment(base):
        match = next(
            (i for i, (c, _) in enumerate(new_segments) if i not in used and key(c.to_dict()) == key(config.to_dict())),
            None,
        )
        if match is None:
            unmatched.append(f"{label(config)} (base only)")
            continue
        used.add(match)
        compared.append(compare_segment(config, rows, new_segments[match][1], max_regression))
    unmatched += [f"{label(c)} (new only)" for i, (c, _) in enumerate(new_segments) if i not in used]
    if not compared:
        reasons.append("no configuration was measured by both runs (" + "; ".join(unmatched) + ")")
    return Comparison(compared, reasons, max_regression, unmatched)


def format_comparison(c: Comparison, base_name: str, new_name: str) -> str:
    """The comparison as the terminal shows it."""
    out = [f"{new_name} against {base_name} — changes with {LEVEL:.0%} intervals (autocorrelation-corrected t)"]
    for s in c.segments:
        out.append("")
        out.append(f"{s.label}: {s.base_seconds} and {s.new_seconds} steady seconds")
        if s.untrusted:
            out.append(f"  no verdict: {s.untrusted}")
            continue
        out.append(f"  {'figure':<12} {'base':>10} {'new':>10} {'change':>9}  {'interval':<20} verdict")
        for f in s.figures:
            fig, b, n, ch, iv, verdict = f.row()
            out.append(f"  {fig:<12} {b:>10} {n:>10} {ch:>9}  {iv:<20} {verdict}")
    if c.unmatched:
        out.append("")
        out.append("Not compared (no matching configuration): " + "; ".join(c.unmatched))
    out.append("")
    out.append("Verdict: " + c.verdict)
    return "\n".join(out)


def parse_percent(text: str) -> float:
    """`--max-regression 10%` (or 10) as 10.0; ValueError naming the expected form."""
    value = text.strip().removesuffix("%").strip()
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"--max-regression takes a percentage like 10% (got {text!r})") from None
    if not math.isfinite(number) or not 0 <= number < 1000:
        raise ValueError(f"--max-regression takes a percentage from 0 to 999 (got {text!r})")
    return number


class Baseline:
    """A recorded session held beside a live one: the dashboard's line of live figures against it (`--baseline`).

    The live figures are the means of the last :data:`LIVE_S` seconds of the running configuration, against the
    steady seconds of the baseline's segment with the same configuration. A live line has no interval (seconds go on
    arriving); `loadtui compare` on the two logs gives the judged comparison.
    """

    LIVE_S = 10

    def __init__(self, log: SessionLog) -> None:
        self.name = log.path.name
        self._segments = [(key(c.to_dict()), rows) for c, rows in steady_by_segment(log) if rows]

    def line(self, config: RunConfig, recent: Sequence[Row]) -> str:
        """ "vs baseline: req/s −9.8% · p50 +12% · p95 +8%", or why there is nothing to compare yet."""
        rows = next((r for k, r in self._segments if k == key(config.to_dict())), None)
        if rows is None:
            return f"vs {self.name}: this configuration is not in the baseline"
        live = list(recent)[-self.LIVE_S :]
        if len(live) < self.LIVE_S:
            return f"vs {self.name}: measuring ({len(live)} of {self.LIVE_S} s)"
        parts = []
        for fig in FIGURES[:3]:
            xs = [v for r in rows if (v := fig.value(r)) is not None]
            ys = [v for r in live if (v := fig.value(r)) is not None]
            if xs and ys and statistics.fmean(xs) > 0:
                parts.append(f"{fig.name} {statistics.fmean(ys) / statistics.fmean(xs) - 1:+.0%}")
        return f"vs {self.name}: " + (" · ".join(parts) if parts else "nothing to compare yet")
