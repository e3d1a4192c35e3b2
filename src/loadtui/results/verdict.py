"""Service-level objectives, the settings a sweep varies, and the verdict: which configuration won, and why.

Pure functions over :class:`~loadtui.results.segments.Segment` figures; the plan (plan.py) runs the steps, this module judges
them. The rules:

- with SLOs, the winner is the configuration with the most requests/s that meets every SLO; none may meet them;
- without SLOs, the winner is the one with the most requests/s among those whose p95 is within 1.5× of the best p95
  (and without failures, when some configuration had none), so a configuration that buys 2% more throughput with
  three times the latency does not win;
- the winner is compared with the next best by requests/s below it, and a configuration with more requests/s (which
  did not qualify) says why it lost: the SLOs it missed, its p95, its failures;
- the verdict also says where adding more of the varied resource stops paying: the first step of a numeric setting
  that gains less than :data:`DIMINISHING_GAIN`, and what the figures of that step show (CPU-bound, load generator
  saturated, or the finding that was active).
"""

from __future__ import annotations

import itertools
import math
import os
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from loadtui.config import SCENARIO_NAMES
from loadtui.diagnose.thresholds import THRESHOLDS
from loadtui.errors import UsageError
from loadtui.results.segments import Segment

Metric = Literal["p50", "p95", "p99", "fail", "rps"]

P95_TOLERANCE = 1.5
"""Without SLOs, a configuration may win only if its p95 is within this factor of the best p95."""

DIMINISHING_GAIN = 0.10
"""A step of a numeric setting that adds less than this share of throughput is where more stops helping."""

KEPT_UP = THRESHOLDS.backlog_kept_up
"""A rate is sustained while the app finishes this share of the arrivals it is sent (as the diagnosis's `backlog`)."""
KNEE_GAIN = 0.05
"""A capacity search stops when one more step of users adds less than this share of throughput."""

AUTO_USERS: tuple[int, ...] = (5, 10, 20, 40, 80, 160, 320, 640, 1280)
"""The user counts a capacity search (`--vary users=auto`) tries, in order, until the knee."""

AUTO_RATES: tuple[float, ...] = (10, 20, 40, 80, 160, 320, 640, 1280, 2560, 5120, 10240)
"""The arrival rates (req/s) a capacity search by rate (`--vary rate=auto`) tries, in order, until one is not kept
up with: doubling finds the knee within a factor of two in a dozen steps, whatever the app's capacity."""

_SLO = re.compile(r"^\s*(p50|p95|p99|fail|rps)\s*([<>])\s*([0-9]+(?:\.[0-9]+)?)\s*(ms|%)?\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Slo:
    """One objective, e.g. `p95 < 100 ms`, `fail < 1 %`, `rps > 500`."""

    metric: Metric
    limit: float

    @property
    def below(self) -> bool:
        """True for an upper bound (latencies and failures), False for `rps > N`."""
        return self.metric != "rps"

    @property
    def unit(self) -> str:
        return {"fail": " %", "rps": " req/s"}.get(self.metric, " ms")

    def show(self, value: float | None) -> str:
        """A measured figure in this objective's unit: `1,000 ms`, `0.25 %`, `812 req/s`."""
        if value is None:
            return "not measured"
        return f"{value:.2f}{self.unit}" if self.metric == "fail" else f"{value:,.0f}{self.unit}"

    def __str__(self) -> str:
        return f"{self.metric} {'<' if self.below else '>'} {self.limit:g}{self.unit}"

    def measure(self, seg: Segment) -> float | None:
        """The figure of `seg` this objective is about (failures as a percentage of requests)."""
        if self.metric == "fail":
            if seg.rps is None:
                return None
            return 0.0 if not seg.rps else 100.0 * (seg.fail_rps or 0.0) / seg.rps
        value: float | None = getattr(seg, self.metric)
        return value

    def met(self, seg: Segment) -> bool:
        """True when `seg` meets the objective (a figure that was never measured does not)."""
        value = self.measure(seg)
        if value is None:
            return False
        return value < self.limit if self.below else value > self.limit


def miss(seg: Segment, slos: Sequence[Slo]) -> float:
    """How far `seg` misses the objectives it misses, each as a share of its limit, added up (0 when all are met;
    infinite for a figure that was not measured): of the steps that miss as many, the closest misses by the least."""
    total = 0.0
    for slo in slos:
        if slo.met(seg):
            continue
        value = slo.measure(seg)
        if value is None or slo.limit == 0:
            return math.inf
        total += abs(value - slo.limit) / abs(slo.limit)
    return total


def parse_slo(text: str) -> Slo:
    """`p50|p95|p99 < N ms`, `fail < N %` or `rps > N` (spaces optional); UsageError otherwise."""
    m = _SLO.match(text)
    hint = "use p50|p95|p99 < N ms, fail < N %, or rps > N, e.g. --slo 'p95 < 100 ms'"
    if m is None:
        raise UsageError(f"--slo {text!r} is not an objective; {hint}")
    metric, op, number, unit = m.group(1).lower(), m.group(2), float(m.group(3)), (m.group(4) or "").lower()
    expected_op = ">" if metric == "rps" else "<"
    expected_unit = {"fail": "%", "rps": ""}.get(metric, "ms")
    if op != expected_op or unit not in (expected_unit, ""):
        raise UsageError(
            f"--slo {text!r}: {metric} takes `{expected_op} N{expected_unit and ' ' + expected_unit}`; {hint}"
        )
    return Slo(metric=metric, limit=number)  # type: ignore[arg-type]


TOO_SHORT = (
    "nothing was measured: the first seconds (2 s at one user per worker, the ramp to all users, 3 s of settling) "
    "are not steady state; give --duration 15 or more"
)
"""Why a run has no steady second, and how long it must be."""


@dataclass(frozen=True)
class SloCheck:
    """One objective checked against one configuration segment."""

    slo: str
    segment: int
    value: float | None
    met: bool

    def __str__(self) -> str:
        where = f"segment {self.segment}" if self.segment >= 0 else TOO_SHORT
        value = "—" if self.value is None else f"{self.value:,.2f}".rstrip("0").rstrip(".")
        return f"{self.slo}: {'met' if self.met else 'MISSED'} ({value}, {where})"


def check(segs: Sequence[Segment], slos: Sequence[Slo]) -> list[SloCheck]:
    """Every objective against every segment that has steady seconds (a run without any is checked as missed)."""
    measured = [s for s in segs if s.steady_seconds > 0 and s.rps is not None]
    if not measured:
        return [SloCheck(str(slo), -1, None, False) for slo in slos]
    return [SloCheck(str(slo), s.index, _round(slo.measure(s)), slo.met(s)) for s in measured for slo in slos]


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


# -- what a sweep varies -------------------------------------------------------------------------------------------

VARY_KEYS: dict[str, str] = {
    "workers": "workers",
    "users": "users",
    "rate": "rate",
    "pool-min": "pool_min",
    "pool-max": "pool_max",
    "db-mode": "db_mode",
    "access-log": "access_log",
    "scenario": "scenario",
}
"""`--vary` keys and the RunConfig field each sets."""

NUMERIC = frozenset({"workers", "users", "pool_min", "pool_max"})
"""Fields where "more" has a meaning (the verdict says where more stops helping)."""

SAMPLE_APP_ONLY = frozenset({"pool_min", "pool_max", "db_mode", "access_log"})
"""Fields only the bundled sample app reads."""


@dataclass(frozen=True)
class Vary:
    """One `--vary KEY=V1,V2,…`: a RunConfig field and its values in order (`auto`: a capacity search of users)."""

    field: str
    values: tuple[Any, ...]
    auto: bool = False


def parse_vary(text: str) -> Vary:
    """`KEY=V1,V2,…`; UsageError naming the problem and the fix otherwise."""
    key, sep, rest = text.partition("=")
    key = key.strip()
    if not sep or key not in VARY_KEYS:
        raise UsageError(
            f"--vary {text!r}: expected KEY=V1,V2,… with KEY one of {', '.join(VARY_KEYS)}, e.g. --vary workers=1,2,4"
        )
    name = VARY_KEYS[key]
    raw = [v.strip() for v in rest.split(",") if v.strip()]
    if not raw:
        raise UsageError(f"--vary {key}= needs at least one value, e.g. --vary {key}=1,2")
    if name == "users" and raw == ["auto"]:
        return Vary(name, AUTO_USERS, auto=True)
    if name == "rate" and raw == ["auto"]:
        return Vary(name, AUTO_RATES, auto=True)
    values = tuple(_value(key, name, v) for v in raw)
    if len(set(values)) != len(values):
        raise UsageError(f"--vary {text!r} repeats a value; give each value once")
    return Vary(name, values)


def _value(key: str, name: str, raw: str) -> Any:
    if name == "rate":
        try:
            rate = float(raw) if raw.isascii() else math.nan
        except ValueError:
            rate = math.nan
        if not (math.isfinite(rate) and rate > 0):
            raise UsageError(
                f"--vary rate: {raw!r} is not a number of requests per second above 0; e.g. "
                "--vary rate=100,200,400 or rate=auto"
            )
        return rate
    if name in NUMERIC:
        lowest = 0 if name == "pool_min" else 1
        if not (raw.isascii() and raw.isdigit()) or int(raw) < lowest:
            auto = " or users=auto" if name == "users" else ""
            raise UsageError(f"--vary {key}: {raw!r} is not a whole number ≥ {lowest}; e.g. --vary {key}=1,2,4{auto}")
        return int(raw)
    if name == "access_log":
        flags = {"on": True, "true": True, "yes": True, "off": False, "false": False, "no": False}
        if raw.lower() not in flags:
            raise UsageError(f"--vary access-log: {raw!r} is not on or off; e.g. --vary access-log=off,on")
        return flags[raw.lower()]
    if name == "db_mode":
        if raw not in ("pool", "per-request"):
            raise UsageError(f"--vary db-mode: {raw!r} is not pool or per-request")
        return raw
    if raw not in SCENARIO_NAMES:
        raise UsageError(f"--vary scenario: unknown scenario {raw!r}; choose from {', '.join(SCENARIO_NAMES)}")
    return raw


def describe(changes: dict[str, Any]) -> str:
    """A step's settings in words: `2 workers · pool max 5 · access log on`."""
    parts = []
    for name, value in changes.items():
        if name == "workers":
            parts.append(f"{value} worker{'s' if value != 1 else ''}")
        elif name == "users":
            parts.append(f"{value} user{'s' if value != 1 else ''}")
        elif name == "rate":
            parts.append(f"{value:g} req/s")
        elif name == "access_log":
            parts.append(f"access log {'on' if value else 'off'}")
        elif name == "db_mode":
            parts.append("pool" if value == "pool" else "conn/request")
        else:
            parts.append(f"{name.replace('_', ' ')} {value}")
    return " · ".join(parts) or "as started"


# -- the verdict ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    """The configuration that won (the summary line's `verdict`); `segment` None when none qualified."""

    segment: int | None
    config: dict[str, Any]
    """The settings the sweep varied, at their winning values."""
    rps: float | None
    p95: float | None
    why: str
    knee: float | None = None
    """A capacity search: the most users the configuration served within its SLOs."""
    slos: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class StepResult:
    """One measured step of a plan: what it changed and the figures of its measured seconds."""

    changes: dict[str, Any]
    segment: Segment
    note: str = ""
    """Why the step is not a plain measurement ("skipped", "did not settle", "restart failed: …")."""

    @property
    def label(self) -> str:
        return describe(self.changes)


def choose(results: Sequence[StepResult], slos: Sequence[Slo], cores: int | None = None) -> Verdict:
    """The winner among `results` (see the module's rules), with the reason in words."""
    done = [r for r in results if r.segment.rps is not None and r.segment.steady_seconds > 0]
    names = [str(s) for s in slos]
    best_p95: float | None = None
    if not done:
        return Verdict(None, {}, None, None, "no step was measured", slos=names)
    if slos:
        qualified = [r for r in done if all(s.met(r.segment) for s in slos)]
        if not qualified:
            closest = min(done, key=lambda r: (sum(not s.met(r.segment) for s in slos), miss(r.segment, slos)))
            missed = ", ".join(f"{s} ({_figure(s, closest.segment)})" for s in slos if not s.met(closest.segment))
            return Verdict(
                None,
                {},
                None,
                None,
                f"no configuration met the SLOs; closest: {closest.label}, missed {missed}",
                slos=names,
            )
        reason = f"the most req/s meeting {', '.join(names)}"
    else:
        best_p95 = min((r.segment.p95 for r in done if r.segment.p95 is not None), default=None)
        qualified = [
            r for r in done if best_p95 is None or r.segment.p95 is None or r.segment.p95 <= P95_TOLERANCE * best_p95
        ]
        clean = [r for r in qualified if not r.segment.fail_rps]
        qualified = clean or qualified
        reason = (
            f"the most req/s with p95 within {P95_TOLERANCE:g}× of the best ({best_p95:g} ms)"
            if best_p95
            else "the most req/s"
        )
    if any("rate" in r.changes for r in qualified):
        # By rate, a step wins only if the app kept up with it: what it did not finish is not throughput it sustains.
        kept = [r for r in qualified if sustained(r)]
        if not kept:
            return Verdict(None, {}, None, None, "the app kept up with none of the rates; lower them", slos=names)
        qualified = kept
        reason += ", kept up with"
    win = max(qualified, key=lambda r: (r.segment.rps or 0.0, -(r.segment.p95 or 0.0)))
    seg = win.segment
    why = f"{win.label}: {seg.rps:.0f} req/s, p95 {_ms(seg.p95)} — {reason}"
    # By rate, a step the app did not keep up with is left to the knee: its requests/s is not a rate it sustains.
    others = [r for r in done if r is not win and r.segment.rps and ("rate" not in r.changes or sustained(r))]
    below = [r for r in others if (r.segment.rps or 0.0) <= (seg.rps or 0.0)]
    if below:
        runner_up = max(below, key=lambda r: r.segment.rps or 0.0)
        ratio = (seg.rps or 0.0) / (runner_up.segment.rps or 1.0)
        why += f"; {ratio:.2f}× the next best, {runner_up.label} ({runner_up.segment.rps:.0f} req/s)"
    # A step with more requests/s did not qualify: it says why it lost.
    more = [r for r in others if (r.segment.rps or 0.0) > (seg.rps or 0.0)]
    if more:
        lost = max(more, key=lambda r: r.segment.rps or 0.0)
        why += f"; {lost.label} did {lost.segment.rps:.0f} req/s but {_lost(lost.segment, slos, best_p95)}"
    stop = diminishing(done, win, cores)
    if stop:
        why += f"; {stop}"
    return Verdict(seg.index, dict(win.changes), seg.rps, seg.p95, why, slos=names)


def _lost(seg: Segment, slos: Sequence[Slo], best_p95: float | None) -> str:
    """Why a step with more requests/s did not win: the SLOs it missed, its latency, or its failures."""
    if slos:
        return "missed " + ", ".join(f"{s} ({_figure(s, seg)})" for s in slos if not s.met(seg))
    if best_p95 and seg.p95 is not None and seg.p95 > P95_TOLERANCE * best_p95:
        return f"p95 {_ms(seg.p95)}, over {P95_TOLERANCE:g}× the best"
    return f"failed {seg.fail_rps or 0.0:.1f}/s"


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:.0f} ms"


def _figure(slo: Slo, seg: Segment) -> str:
    return slo.show(slo.measure(seg))


def diminishing(results: Sequence[StepResult], around: StepResult, cores: int | None = None) -> str:
    """Where more of a numeric setting stops helping, among the steps that differ from `around` in that setting only.

    E.g. "4 workers: +3% over 2 — CPU-bound on 2 cores". Empty when every step up paid off.
    """
    for name in [n for n in around.changes if n in NUMERIC]:
        line = [
            r
            for r in results
            if all(v == around.changes.get(k) for k, v in r.changes.items() if k != name) and name in r.changes
        ]
        line.sort(key=lambda r: r.changes[name])
        for lower, higher in itertools.pairwise(line):
            if not (lower.segment.rps and higher.segment.rps is not None):
                continue
            gain = higher.segment.rps / lower.segment.rps - 1
            if gain < DIMINISHING_GAIN:
                what = describe({name: higher.changes[name]})
                return f"{what}: {gain:+.0%} over {lower.changes[name]} — {cause(higher.segment, cores)}"
    return ""


def cause(seg: Segment, cores: int | None = None) -> str:
    """What a step's figures show about why it did not gain."""
    cores = cores or os.cpu_count() or 1
    if seg.app_cpu_percent is not None and seg.app_cpu_percent >= 80 * cores:
        return f"CPU-bound on {cores} core{'s' if cores != 1 else ''} (the app used {seg.app_cpu_percent:.0f}%)"
    if seg.loadgen_cpu_percent is not None and seg.loadgen_cpu_percent >= 90:
        return f"the load generator is saturated ({seg.loadgen_cpu_percent:.0f}% CPU)"
    if seg.findings:
        return f"limited by {', '.join(seg.findings)}"
    return "something else caps it (see the findings of that step)"


@dataclass(frozen=True)
class Knee:
    """A capacity search's answer so far."""

    value: float | None
    """The most users (or the highest rate) served within the SLOs before throughput stopped growing (or the app
    stopped keeping up with the rate); None: not even the first step."""
    reason: str
    stopped: bool
    """True once a step missed an SLO or stopped adding throughput: the search is over."""
    searched: str = "users"
    """What was searched: `users`, or `rate` (the open model)."""

    @property
    def label(self) -> str:
        """`80 users`, `640 req/s sustained`, or `none`."""
        if self.value is None:
            return "none"
        return f"{self.value:g} req/s sustained" if self.searched == "rate" else f"{self.value:g} users"


def sustained(result: StepResult) -> bool:
    """The open model: the app finished (nearly) every arrival of the step's rate and none was dropped."""
    seg = result.segment
    target = float(result.changes.get("rate", seg.target_rate or 0.0))
    return seg.achieved_rate is not None and seg.achieved_rate >= KEPT_UP * target and not seg.dropped_rps


def knee(results: Sequence[StepResult], slos: Sequence[Slo]) -> Knee:
    """Where a capacity search stands after `results` (steps of rising users, in order).

    The search stops at the first step that misses an SLO or adds less than :data:`KNEE_GAIN` of throughput over the
    step before (by rate: finishes less than :data:`KEPT_UP` of its arrivals, or drops some); the knee is the step
    before it.
    """
    served: StepResult | None = None
    prev: StepResult | None = None
    by_rate = any("rate" in r.changes for r in results)
    name = "rate" if by_rate else "users"

    def found(reason: str, stopped: bool = True) -> Knee:
        value = None if served is None else float(served.changes.get(name, 0)) or None
        return Knee(value, reason, stopped, name)

    for step in results:
        missed = [s for s in slos if not s.met(step.segment)]
        if missed:
            return found(f"{step.label} missed {', '.join(str(s) for s in missed)}")
        if by_rate:
            if not sustained(step):
                seg = step.segment
                done = "nothing" if seg.achieved_rate is None else f"{seg.achieved_rate:.0f}/s"
                return found(f"{step.label}: finished {done} of {step.changes.get('rate', seg.target_rate):g}/s")
        elif prev is not None and prev.segment.rps and step.segment.rps is not None:
            gain = step.segment.rps / prev.segment.rps - 1
            if gain < KNEE_GAIN:
                return found(f"{step.label} added {gain:+.0%} req/s over {prev.label}")
        served = prev = step
    return found("every step met the objectives and still added throughput", stopped=False)
