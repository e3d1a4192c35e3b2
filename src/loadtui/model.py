"""The Tick: everything measured in one second, built once and used by the screen, the log and the diagnosis.

Frozen dataclasses with `to_dict`/`from_dict` matching the session log's `tick` lines (DESIGN 3.2). Readers tolerate
unknown fields (newer writers) and missing optional ones.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

Severity = Literal["info", "warning", "critical"]

FindingId = Literal[
    "machine-saturated",
    "too-few-workers",
    "event-loop-blocked",
    "threadpool-saturated",
    "pool-exhausted",
    "db-connection-limit",
    "db-bound",
    "loadgen-saturated",
    "nodelay-delay",
    "queueing",
    "worker-imbalance",
    "app-concurrency-limit",
    "lock-contention",
    "measurement-disturbed",
    "backlog",
]
"""Finding ids (DESIGN 3.3): other tools and tests rely on them, so they keep their meaning."""

EventKind = Literal[
    "session-started",
    "db-started",
    "db-lost",
    "db-back",
    "app-started",
    "app-exited",
    "worker-started",
    "worker-exited",
    "workers",
    "rebalanced",
    "loadgen-started",
    "loadgen-exited",
    "first-step",
    "config",
    "restart",
    "restart-failed",
    "applied",
    "paused",
    "resumed",
    "mark",
    "plan",
    "verdict",
    "record-failed",
    "finding-started",
    "finding-ended",
    "confirmation",
    "confirmation-failed",
    "error",
]
"""Kinds of the session log's `event` lines that this version writes (readers accept unknown ones)."""
_T = TypeVar("_T")


def build(cls: type[_T], data: dict[str, Any]) -> _T:
    """An instance of the dataclass `cls` from a record's fields; unknown keys (from newer versions) are ignored."""
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    return cls(**{k: v for k, v in data.items() if k in names})


@dataclass(frozen=True)
class Latency:
    """Response-time percentiles over one second, in ms; None when no request finished."""

    p50: float | None = None
    p95: float | None = None
    p99: float | None = None
    max: float | None = None


@dataclass(frozen=True)
class OpenLoad:
    """The open model's second (`--rate`): arrivals asked and made, what could not start, and the service time."""

    target_rate: float = 0.0
    """Arrivals per second asked."""
    achieved_rate: float = 0.0
    """Arrivals finished this second."""
    due_rate: float = 0.0
    """Arrivals that came due this second (started or dropped)."""
    dropped_rps: float = 0.0
    """Arrivals not started this second: `--max-in-flight` were still running."""
    in_flight: int = 0
    """Arrivals running at the end of the second."""
    service: Latency = field(default_factory=Latency)
    """The requests' own time, without the wait for their arrival's start (the tick's `latency` includes it)."""


@dataclass(frozen=True)
class EndpointStats:
    """One endpoint over one second."""

    method: str
    name: str
    rps: float
    fail_rps: float
    p50: float | None = None
    p95: float | None = None
    p99: float | None = None


@dataclass(frozen=True)
class ErrorCount:
    """A distinct failure message and how often it happened."""

    method: str
    name: str
    error: str
    count: int
    """Occurrences since the load generator (re)started."""
    new: int = 0
    """Occurrences in this second."""


@dataclass(frozen=True)
class ProcessStats:
    """CPU and memory of one process; CPU is a percent of one core (above 100 means several threads)."""

    pid: int
    cpu_percent: float
    rss_bytes: int
    threads: int | None = None


@dataclass(frozen=True)
class WorkerStats:
    """One app worker: process figures plus what it publishes itself (None when it does not)."""

    pid: int
    cpu_percent: float
    rss_bytes: int
    in_flight: int | None = None
    loop_lag_ms: float | None = None
    """Worst event-loop lag seen by the worker during the last second."""
    requests_per_s: float | None = None
    stale_s: float | None = None
    """Seconds since the worker last published (a blocked loop cannot publish)."""
    threads: int | None = None
    """OS threads of the worker (a sync endpoint's threadpool shows here, up to 40 per worker)."""
    threads_busy: float | None = None
    """Threadpool threads running a sync endpoint, on average over the last second (the helper reports it)."""
    threads_limit: int | None = None
    """The threadpool's size (anyio's default: 40), as the helper reports it."""
    host: str | None = None
    """The host of a worker that sends its figures over the network (`--stats-listen`); None for a local one."""

    @property
    def name(self) -> str:
        """`pid`, or `host:pid` for a remote worker."""
        return f"{self.host}:{self.pid}" if self.host else str(self.pid)


@dataclass(frozen=True)
class LoadgenStats:
    """The load generator's processes, summed."""

    pids: list[int]
    cpu_percent: float
    per_process: list[ProcessStats] = field(default_factory=list)
    cores: int = 1
    """Cores it can use at most (its process count)."""


@dataclass(frozen=True)
class DbStats:
    """PostgreSQL connections from pg_stat_activity."""

    connections: int
    max_connections: int
    by_state: dict[str, int]
    by_application: dict[str, int]
    reserved: int = 0
    """Slots the app's role may not use (superuser and other reserved slots)."""
    waiting_on_locks: int = 0
    """Backends waiting on a lock."""
    lock_relation: str | None = None
    """The table most lock waits were on (pg_locks), when they waited on rows or a table; None without waits."""
    lock_query: str | None = None
    """The query most lock waiters were running (shortened), None without waits."""
    lock_blocker: str | None = None
    """The query of the backend that blocked them (pg_blocking_pids), when PostgreSQL could tell."""

    @property
    def allowed(self) -> int:
        """Connections the app's role may open: `max_connections` less the reserved slots."""
        return self.max_connections - self.reserved


@dataclass(frozen=True)
class PoolStats:
    """One worker's connection pool, from the stats it publishes."""

    pid: int
    size: int
    available: int
    waiting: int
    wait_ms: float
    """Milliseconds requests spent waiting for a connection during the last second (all requests, summed)."""
    max: int | None = None
    errors: int = 0
    """Connection errors during the last second (pool errors and timeouts, or per-request connect failures)."""


@dataclass(frozen=True)
class ProbeStats:
    """loadtui's probe requests in one second: a path the app does not route, answered without its code (probe.py)."""

    sent: int = 0
    answered: int = 0
    failed: int = 0
    p50_ms: float | None = None
    """Median time to the answer's status line of the probes answered this second."""
    max_ms: float | None = None
    waiting_ms: float | None = None
    """Age of the oldest probe still unanswered at the end of the second; None when none waits."""
    kept_p50_ms: float | None = None
    """Median time of the probes sent over one kept-alive connection, to the end of the body (Nagle shows here)."""

    @property
    def wait_ms(self) -> float | None:
        """How long a request that runs none of the app's code waited this second (answered, or still waiting)."""
        figures = [v for v in (self.p50_ms, self.waiting_ms) if v is not None]
        return max(figures) if figures else None


Signal = Literal["helper", "probe", "process", "database", "load", "stack"]
"""What named a finding: loadtui's helper in the app, the probe requests, the OS's process counters, PostgreSQL's
views, the load generator's own figures, or a stack sample (py-spy)."""

SIGNAL_NAMES: dict[str, str] = {
    "helper": "loadtui's helper in the app",
    "probe": "probe requests",
    "process": "process counters",
    "database": "PostgreSQL's views",
    "load": "the load figures",
    "stack": "a stack sample",
}
"""How each signal reads on screen."""


def named_by(signals: list[Signal]) -> str:
    """ "named by probe requests, process counters" (empty without signals)."""
    return "named by " + ", ".join(SIGNAL_NAMES.get(s, s) for s in signals) if signals else ""


@dataclass(frozen=True)
class OutsideProcess:
    """A process outside loadtui's tree (not the app, the load generator, PostgreSQL or loadtui) using the CPU."""

    pid: int
    name: str
    cpu_percent: float
    """Percent of one core over the last second."""


@dataclass(frozen=True)
class Finding:
    """A named bottleneck with the numbers that prove it."""

    id: FindingId
    severity: Severity
    title: str
    evidence: str
    advice: str = ""
    confirmation: str = ""
    """What a stack dump of the suspect workers showed (py-spy), once the user asked for one."""
    signals: list[Signal] = field(default_factory=list)
    """Which measurements named it (the README's table says which findings need the helper, nothing, or ptrace)."""
    consequence_of: FindingId | None = None
    """The finding this one follows from while both hold (it is listed after it; fix that one first), else None."""


@dataclass(frozen=True)
class Tick:
    """Everything measured in one second of a session."""

    t: float
    """Seconds since the session started."""
    rps: float = 0.0
    fail_rps: float = 0.0
    retried_rps: float = 0.0
    """Requests sent again after a worker closed their reused connection unread (counted in rps once)."""
    users: int = 0
    latency: Latency = field(default_factory=Latency)
    """Percentiles of the requests' latency; with `--rate`, from each arrival's intended start."""
    open: OpenLoad | None = None
    """The open model's figures with `--rate`; None for users (the closed model)."""
    endpoints: list[EndpointStats] = field(default_factory=list)
    errors: list[ErrorCount] = field(default_factory=list)
    workers: list[WorkerStats] = field(default_factory=list)
    app: ProcessStats | None = None
    loadgen: LoadgenStats | None = None
    db: DbStats | None = None
    pools: list[PoolStats] = field(default_factory=list)
    probe: ProbeStats | None = None
    """loadtui's probe requests this second; None with --no-probe or before the app answers."""
    findings: list[Finding] = field(default_factory=list)
    cpu_count: int = 1
    machine_cpu_percent: float | None = None
    """Whole-machine CPU, percent of all cores."""
    steal_percent: float | None = None
    """CPU time a hypervisor gave to other guests, percent of all cores (a VM's noisy neighbours)."""
    outside: list[OutsideProcess] = field(default_factory=list)
    """The busiest processes outside loadtui's tree, when they use a noticeable share of the cores."""
    segment: int = 0
    """Index of the configuration segment this second belongs to."""

    @property
    def app_cpu_percent(self) -> float:
        """CPU of all workers together, percent of one core."""
        return sum(w.cpu_percent for w in self.workers)

    @property
    def pool_waiting(self) -> int | None:
        """Requests waiting for a pooled connection in all workers; None without pool figures."""
        return sum(p.waiting for p in self.pools) if self.pools else None

    @property
    def loadgen_cpu_percent(self) -> float | None:
        """The load generator's CPU (all its processes), percent of one core; None before it is measured."""
        return self.loadgen.cpu_percent if self.loadgen else None

    def to_dict(self) -> dict[str, Any]:
        """The tick as a session-log line (with `"type": "tick"`)."""
        return {"type": "tick", **dataclasses.asdict(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Tick:
        """Inverse of :meth:`to_dict`, tolerant of missing and unknown fields."""
        d = dict(data)
        d.pop("type", None)
        nested: dict[str, Any] = {
            "latency": build(Latency, d.get("latency") or {}),
            "open": _open(d["open"]) if d.get("open") else None,
            "endpoints": [build(EndpointStats, e) for e in d.get("endpoints") or []],
            "errors": [build(ErrorCount, e) for e in d.get("errors") or []],
            "workers": [build(WorkerStats, w) for w in d.get("workers") or []],
            "app": build(ProcessStats, d["app"]) if d.get("app") else None,
            "loadgen": _loadgen(d["loadgen"]) if d.get("loadgen") else None,
            "db": build(DbStats, d["db"]) if d.get("db") else None,
            "pools": [build(PoolStats, p) for p in d.get("pools") or []],
            "probe": build(ProbeStats, d["probe"]) if d.get("probe") else None,
            "findings": [build(Finding, f) for f in d.get("findings") or []],
            "outside": [build(OutsideProcess, o) for o in d.get("outside") or []],
        }
        d.update(nested)
        return build(cls, d)


def _open(data: dict[str, Any]) -> OpenLoad:
    d = dict(data)
    d["service"] = build(Latency, d.get("service") or {})
    return build(OpenLoad, d)


def _loadgen(data: dict[str, Any]) -> LoadgenStats:
    d = dict(data)
    d["per_process"] = [build(ProcessStats, p) for p in d.get("per_process") or []]
    return build(LoadgenStats, d)


@dataclass(frozen=True)
class Event:
    """Something that happened at a moment: a config change, a restart, a failure, a finding starting or ending."""

    t: float
    kind: str
    message: str
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The event as a session-log line."""
        return {"type": "event", "t": self.t, "kind": self.kind, "message": self.message, **self.data}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Event:
        """Inverse of :meth:`to_dict`."""
        rest = {k: v for k, v in data.items() if k not in ("type", "t", "kind", "message")}
        return cls(
            t=float(data.get("t", 0.0)), kind=str(data.get("kind", "")), message=str(data.get("message", "")), data=rest
        )


MAX_FIGURE = 1e15
"""No figure of one second is larger (requests, bytes, milliseconds): larger ones, and NaN or ±Infinity, are a damaged
or forged log, refused before a sum overflows or a plot breaks."""


def check_types(obj: Any, where: str = "") -> None:
    """Raise ValueError naming the first field whose value does not have its declared type (records read from files).

    Numbers must be numbers (not text, not booleans), text must be text, lists must be lists; nested records are
    checked the same way. Literal-typed fields need text.
    """
    for field_name, hint in _field_hints(type(obj)):
        _check_value(getattr(obj, field_name), hint, f"{where}{field_name}")


_HINTS: dict[type, tuple[tuple[str, Any], ...]] = {}


def _field_hints(cls: type) -> tuple[tuple[str, Any], ...]:
    """Each field's resolved type, once per class (resolving the annotations is the slow part: 3 ms a tick)."""
    if cls not in _HINTS:
        hints = typing.get_type_hints(cls)
        _HINTS[cls] = tuple((f.name, hints[f.name]) for f in dataclasses.fields(cls))
    return _HINTS[cls]


def _check_value(value: Any, hint: Any, name: str) -> None:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return
        errors = []
        for option in (o for o in options if o is not type(None)):
            try:
                _check_value(value, option, name)
                return
            except ValueError as exc:
                errors.append(exc)
        raise errors[0] if errors else ValueError(f"{name}: must not be empty")
    if origin is typing.Literal or hint is str:
        if not isinstance(value, str):
            raise ValueError(f"{name}: expected text, got {value!r:.40}")
        return
    if hint is float or hint is int:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (hint is int and isinstance(value, float)):
            raise ValueError(f"{name}: expected a number, got {value!r:.40}")
        if not -MAX_FIGURE <= value <= MAX_FIGURE:  # also NaN (no comparison holds) and ±Infinity
            raise ValueError(f"{name}: {str(value)[:40]} is not a figure a second can hold")
        return
    if hint is bool:
        if not isinstance(value, bool):
            raise ValueError(f"{name}: expected true or false, got {value!r:.40}")
        return
    if origin is list:
        if not isinstance(value, list):
            raise ValueError(f"{name}: expected a list, got {value!r:.40}")
        (item,) = typing.get_args(hint)
        for i, element in enumerate(value):
            _check_value(element, item, f"{name}[{i}]")
        return
    if origin is dict:
        if not isinstance(value, dict):
            raise ValueError(f"{name}: expected an object, got {value!r:.40}")
        key_hint, value_hint = typing.get_args(hint) or (str, Any)
        for k, v in value.items():
            _check_value(k, key_hint, f"{name} key")
            if value_hint is not Any:
                _check_value(v, value_hint, f"{name}[{k!r:.20}]")
        return
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        if not isinstance(value, hint):
            raise ValueError(f"{name}: expected an object, got {value!r:.40}")
        check_types(value, f"{name}.")
