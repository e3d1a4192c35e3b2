"""Configuration segments: the seconds of a session that ran with one configuration, and their steady state.

Each change of users, workers, pool, database mode, access log or scenario starts a segment. The first seconds after a
change are settling (users still spawning, new workers warming up) and are left out of the figures.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from loadtui.config import RunConfig
from loadtui.model import Event, Tick

SETTLE_SECONDS = 3
"""Seconds after a change that are not steady state."""


def label(config: RunConfig) -> str:
    """A short description of a configuration, for tables."""
    scenario = config.scenario if config.locustfile is None else "custom"
    if not config.sample_app:  # the pool and access-log settings are the sample app's; another app has its own
        where = "at " + config.host if config.host else "your app"
        return f"{scenario} · {config.load_label} · {config.workers}w · {where}"
    pool = f"pool {config.pool_min}-{config.pool_max}" if config.db_mode == "pool" else "conn/request"
    log = " +log" if config.access_log else ""
    return f"{scenario} · {config.load_label} · {config.workers}w · {pool}{log}"


@dataclass(frozen=True)
class Segment:
    """Steady-state figures of one configuration segment."""

    index: int
    label: str
    start_t: float
    end_t: float
    seconds: int
    steady_seconds: int
    rps: float | None
    fail_rps: float | None
    p50: float | None
    p95: float | None
    p99: float | None
    app_cpu_percent: float | None
    """All workers together, percent of one core."""
    cpu_per_worker: float | None
    loadgen_cpu_percent: float | None
    db_connections: float | None
    pool_waiting: float | None
    findings: list[str] = field(default_factory=list)
    target_rate: float | None = None
    """With `--rate`: arrivals per second asked; None for users (the closed model)."""
    achieved_rate: float | None = None
    """With `--rate`: arrivals finished per second (below the target: the app did not keep up)."""
    dropped_rps: float | None = None
    """With `--rate`: arrivals per second not started (`--max-in-flight` were running)."""
    in_flight: float | None = None
    """With `--rate`: arrivals running at once (median over the steady seconds)."""
    service_p95: float | None = None
    """With `--rate`: the requests' own p95, without the wait for their start (`p95` includes it)."""
    marks: list[str] = field(default_factory=list)
    """The notes marked during the segment, as "<seconds> s: <note>" (a mark never starts a segment)."""
    config: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """For the summary line."""
        return asdict(self)


def _mean(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return round(statistics.fmean(present), 2) if present else None


def _median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return round(statistics.median(present), 2) if present else None


@dataclass(frozen=True, slots=True)
class Row:
    """The figures of one second a segment summary reads: a tick without its endpoints, errors and pools.

    Summaries of long sessions are computed from these, streamed from the log, never from every Tick at once.
    """

    t: float
    segment: int
    users: int
    rps: float
    fail_rps: float
    p50: float | None
    p95: float | None
    p99: float | None
    app_cpu_percent: float | None
    cpu_per_worker: float | None
    loadgen_cpu_percent: float | None
    db_connections: float | None
    pool_waiting: float | None
    findings: tuple[str, ...]
    target_rate: float | None = None
    achieved_rate: float | None = None
    dropped_rps: float | None = None
    in_flight: float | None = None
    service_p95: float | None = None

    @classmethod
    def of(cls, tick: Tick) -> Row:
        workers = len(tick.workers)
        return cls(
            t=tick.t,
            segment=tick.segment,
            users=tick.users,
            rps=tick.rps,
            fail_rps=tick.fail_rps,
            p50=tick.latency.p50,
            p95=tick.latency.p95,
            p99=tick.latency.p99,
            app_cpu_percent=tick.app_cpu_percent if workers else None,
            cpu_per_worker=tick.app_cpu_percent / workers if workers else None,
            loadgen_cpu_percent=tick.loadgen_cpu_percent,
            db_connections=float(tick.db.connections) if tick.db else None,
            pool_waiting=tick.pool_waiting,
            findings=tuple(f.id for f in tick.findings),
            target_rate=tick.open.target_rate if tick.open else None,
            achieved_rate=tick.open.achieved_rate if tick.open else None,
            dropped_rps=tick.open.dropped_rps if tick.open else None,
            in_flight=float(tick.open.in_flight) if tick.open else None,
            service_p95=tick.open.service.p95 if tick.open else None,
        )


def summarize(
    index: int,
    seconds: Sequence[Tick | Row],
    config: RunConfig | None,
    settle: int = SETTLE_SECONDS,
    marks: Sequence[Event] = (),
) -> Segment:
    """The steady-state figures of one segment's seconds (`marks`: the session's mark events).

    Steady seconds start after `settle` seconds and after the second in which every user had been spawned (a ramp of
    200 users at 10/s is not steady state); a segment whose users never all ran is judged after `settle` only.
    """
    ticks = [s if isinstance(s, Row) else Row.of(s) for s in seconds]
    steady = steady_rows(ticks, config, settle)
    findings: list[str] = []
    for tick in ticks:
        if tick.users == 0:
            continue  # no load, nothing to diagnose: a finding held over from before the pause is not this segment's
        for fid in tick.findings:
            if fid not in findings:
                findings.append(fid)
    return Segment(
        index=index,
        label=label(config) if config else f"segment {index}",
        start_t=ticks[0].t if ticks else 0.0,
        end_t=ticks[-1].t if ticks else 0.0,
        seconds=len(ticks),
        steady_seconds=len(steady),
        rps=_mean([t.rps for t in steady]),
        fail_rps=_mean([t.fail_rps for t in steady]),
        p50=_median([t.p50 for t in steady]),
        p95=_median([t.p95 for t in steady]),
        p99=_median([t.p99 for t in steady]),
        app_cpu_percent=_mean([t.app_cpu_percent for t in steady]),
        cpu_per_worker=_mean([t.cpu_per_worker for t in steady]),
        loadgen_cpu_percent=_mean([t.loadgen_cpu_percent for t in steady]),
        db_connections=_mean([t.db_connections for t in steady]),
        pool_waiting=_mean([t.pool_waiting for t in steady]),
        findings=findings,
        target_rate=_mean([t.target_rate for t in steady]),
        achieved_rate=_mean([t.achieved_rate for t in steady]),
        dropped_rps=_mean([t.dropped_rps for t in steady]),
        in_flight=_median([t.in_flight for t in steady]),
        service_p95=_median([t.service_p95 for t in steady]),
        marks=[f"{m.t:.0f} s: {m.data.get('note') or m.message}" for m in marks],
        config=config.to_dict() if config else {},
    )


def steady_rows(ticks: Sequence[Row], config: RunConfig | None, settle: int = SETTLE_SECONDS) -> list[Row]:
    """A segment's steady seconds: after `settle` seconds and after the second in which every user had been spawned
    (a ramp of 200 users at 10/s is not steady state); a segment whose users never all ran, after `settle` only."""
    start = settle
    if config is not None and config.users > 0 and not config.open_model:
        ramp = next((i for i, t in enumerate(ticks) if t.users >= config.users), None)
        if ramp:  # users were still spawning in the first seconds
            start = max(settle, ramp + 1)
    return list(ticks[start:]) if len(ticks) > start else []


def split(
    ticks: Iterable[Tick], configs: dict[int, RunConfig], settle: int = SETTLE_SECONDS, events: Sequence[Event] = ()
) -> list[Segment]:
    """Segments of a session, in order, from the `segment` index each tick carries; marks among `events` are kept.

    `ticks` may be a stream (the session's log read line by line): each is kept only as its :class:`Row`.
    """
    groups: dict[int, list[Row]] = {}
    for tick in ticks:
        groups.setdefault(tick.segment, []).append(Row.of(tick))
    order = sorted(groups)
    marks: dict[int, list[Event]] = {}
    for ev in events:
        if ev.kind == "mark" and order:
            # A tick closes its second: a mark belongs to the first segment whose last second ends at or after it.
            home = next((i for i in order if groups[i][-1].t >= ev.t), order[-1])
            marks.setdefault(home, []).append(ev)
    return [summarize(i, groups[i], configs.get(i), settle, marks.get(i, [])) for i in order]


def best(segments: Sequence[Segment]) -> Segment | None:
    """The segment with the most requests/s among those without failures (or with the fewest failures)."""
    candidates = [s for s in segments if s.rps is not None]
    if not candidates:
        return None
    return max(candidates, key=lambda s: ((s.fail_rps or 0.0) == 0.0, s.rps or 0.0, -(s.p95 or 0.0)))
