"""Collectors: what the session measures besides the load generator, once a second.

Each collector is cheap, never raises into the tick loop (a failing source returns None and says why), and keeps
its state between seconds: psutil `Process` objects per pid (CPU percent is measured since the previous call on the
same object, DESIGN 4.4), the monitoring connection, the previous pool counters.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Generic, TypeVar

import psutil
import psycopg

from loadtui.model import DbStats, OutsideProcess, PoolStats, ProcessStats, WorkerStats

T = TypeVar("T")

STALE_AFTER_S = 2.5
"""A worker record older than this means the worker could not publish: its event loop is blocked (or it hangs)."""


class ProcessCollector:
    """CPU and memory per pid, with one psutil.Process kept per pid across seconds."""

    def __init__(self) -> None:
        self._procs: dict[int, psutil.Process] = {}

    def sample(self, pids: list[int]) -> dict[int, ProcessStats]:
        """Figures for each live pid of `pids` (a new pid's first CPU figure is its average since it started).

        A pid listed twice is sampled once: a one-process app is its own supervisor and worker, and a second
        `cpu_percent` call a moment after the first would read (and report) about 0 %.
        """
        out: dict[int, ProcessStats] = {}
        for pid in dict.fromkeys(pids):
            proc = self._procs.get(pid)
            try:
                first = proc is None
                if proc is None:
                    proc = psutil.Process(pid)
                    self._procs[pid] = proc
                with proc.oneshot():
                    cpu = proc.cpu_percent(None)
                    if first:
                        cpu = _average_since_start(proc)
                    rss = proc.memory_info().rss
                    threads = proc.num_threads()
            except psutil.Error:
                self._procs.pop(pid, None)
                continue
            out[pid] = ProcessStats(pid=pid, cpu_percent=cpu, rss_bytes=rss, threads=threads)
        for gone in set(self._procs) - set(pids):
            del self._procs[gone]
        return out


def _average_since_start(proc: psutil.Process) -> float:
    """CPU percent since the process started: psutil's first reading of a process is 0 %, which a worker serving
    1,000 req/s is not (its next reading, a second later, is a true per-second figure)."""
    try:
        times = proc.cpu_times()
        alive = time.time() - proc.create_time()
    except psutil.Error:
        return 0.0
    return round(100.0 * (times.user + times.system) / alive, 1) if alive > 0.05 else 0.0


def descendants(pid: int) -> list[int]:
    """`pid` and all its descendants that exist now."""
    try:
        proc = psutil.Process(pid)
        return [pid] + [c.pid for c in proc.children(recursive=True)]
    except psutil.Error:
        return []


class Rescanned(Generic[T]):
    """A process tree looked up again only when it may have changed.

    Finding children means reading every process's `/proc/<pid>/stat` (Linux has no cheap child list without
    CONFIG_PROC_CHILDREN), which was half of a tick's collection cost with 8 workers. The tree is scanned again
    when one of its pids has gone, when it has fewer pids than expected, when forced, or every RESCAN_S seconds.
    """

    RESCAN_S = 5.0

    def __init__(self, scan: Callable[[], T | None], pids: Callable[[T], list[int]]) -> None:
        self._scan = scan
        self._pids = pids
        self._value: T | None = None
        self._at = 0.0

    def get(self, *, expected: int | None = None, force: bool = False) -> T | None:
        """The tree now; `expected` is how many pids it should have."""
        value = self._value
        now = time.monotonic()
        if (
            force
            or value is None
            or now - self._at > self.RESCAN_S
            or (expected is not None and len(self._pids(value)) < expected)
            or not all(psutil.pid_exists(pid) for pid in self._pids(value))
        ):
            value = self._value = self._scan()
            self._at = now
        return value


_LOCKS_SQL = """
SELECT left(a.query, 400), count(*),
       max((SELECT l.relation::regclass::text FROM pg_locks l
            WHERE l.pid = a.pid AND NOT l.granted AND l.relation IS NOT NULL LIMIT 1)),
       max((SELECT left(b.query, 400) FROM pg_stat_activity b WHERE b.pid = (pg_blocking_pids(a.pid))[1]))
FROM pg_stat_activity a
WHERE a.wait_event_type = 'Lock' AND a.backend_type = 'client backend' AND a.pid <> pg_backend_pid()
GROUP BY 1 ORDER BY 2 DESC LIMIT 1
"""
"""Asked only while backends wait on locks: the query most of them wait in, the table, and the blocker's query."""

QUERY_CHARS = 160
"""A query is shown up to this many characters (white space folded)."""


def _short(query: str | None) -> str | None:
    if not query:
        return None
    text = " ".join(query.split())
    return text if len(text) <= QUERY_CHARS else text[: QUERY_CHARS - 1] + "…"


_ACTIVITY_SQL = """
SELECT coalesce(state, 'unknown'), coalesce(application_name, ''), count(*),
       count(*) FILTER (WHERE wait_event_type = 'Lock')
FROM pg_stat_activity
WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()
GROUP BY 1, 2
"""


class DbCollector:
    """Connections by state and by application from pg_stat_activity, through one monitoring connection."""

    def __init__(self, dsn: str, *, reserved: int = 0) -> None:
        self.dsn = dsn
        self.reserved = reserved
        self._conn: psycopg.Connection[Any] | None = None
        self._max_connections: int | None = None
        self.last_error: str | None = None
        """Why the last sample failed, or None."""

    def sample(self) -> DbStats | None:
        """Connection figures now, or None when the database cannot be reached (see :attr:`last_error`)."""
        try:
            if self._conn is None or self._conn.closed:
                self._conn = psycopg.connect(
                    self.dsn,
                    autocommit=True,
                    connect_timeout=2,
                    application_name="loadtui-monitor",
                    options="-c statement_timeout=500",
                )
                row = self._conn.execute("SHOW max_connections").fetchone()
                self._max_connections = int(row[0]) if row else None
            rows = self._conn.execute(_ACTIVITY_SQL).fetchall()
            locks = None
            if any(row[3] for row in rows):
                locks = self._conn.execute(_LOCKS_SQL).fetchone()
        except psycopg.Error as exc:
            self.last_error = (str(exc).strip().splitlines() or [type(exc).__name__])[-1]
            self.close()
            return None
        self.last_error = None
        by_state: dict[str, int] = {}
        by_app: dict[str, int] = {}
        waiting = 0
        for state, app, count, lock_waits in rows:
            by_state[state] = by_state.get(state, 0) + count
            by_app[app] = by_app.get(app, 0) + count
            waiting += lock_waits
        return DbStats(
            connections=sum(by_state.values()),
            max_connections=self._max_connections or 0,
            by_state=by_state,
            by_application=by_app,
            reserved=self.reserved,
            waiting_on_locks=waiting,
            lock_query=_short(locks[0]) if locks else None,
            lock_relation=locks[2] if locks else None,
            lock_blocker=_short(locks[3]) if locks else None,
        )

    def close(self) -> None:
        """Close the monitoring connection."""
        if self._conn is not None:
            try:
                self._conn.close()
            except psycopg.Error:
                pass
            self._conn = None


class AppStatsCollector:
    """Reads the records workers publish through :mod:`loadtui.appstats` (one file per pid)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._previous: dict[int, dict[str, Any]] = {}
        self.rejected = 0
        """Records dropped because of their shape (not JSON objects, text where numbers belong...)."""
        self.last_rejected: str | None = None
        """Why the last one was dropped."""

    def read(self, pids: list[int]) -> dict[int, dict[str, Any]]:
        """The latest well-formed record of each of `pids` that has one; a malformed one is dropped and counted."""
        out: dict[int, dict[str, Any]] = {}
        for pid in pids:
            try:
                rec = json.loads((self.directory / f"{pid}.json").read_text())
            except OSError:
                continue
            except ValueError:
                rec = None  # half-written: a worker replaces its file atomically, so this is someone else's
            problem = record_problem(rec)
            if problem is not None:
                self.rejected += 1
                self.last_rejected = f"worker {pid}: {problem}"
                continue
            out[pid] = rec
        return out

    def sample(
        self, workers: dict[int, ProcessStats], interval: float = 1.0
    ) -> tuple[list[WorkerStats], list[PoolStats]]:
        """Worker rows (process figures joined with what they publish) and pool rows."""
        return self.join(workers, self.read(list(workers)))

    def join(
        self, workers: dict[int, ProcessStats], records: dict[int, dict[str, Any]], now: float | None = None
    ) -> tuple[list[WorkerStats], list[PoolStats]]:
        """Worker and pool rows from process figures and the workers' records (each record's `time` is when it was
        written, on this machine's clock)."""
        now = time.time() if now is None else now
        rows: list[WorkerStats] = []
        pools: list[PoolStats] = []
        for pid, proc in sorted(workers.items()):
            rec = records.get(pid)
            prev = self._previous.get(pid)
            if rec is None:
                rows.append(
                    WorkerStats(pid=pid, cpu_percent=proc.cpu_percent, rss_bytes=proc.rss_bytes, threads=proc.threads)
                )
                continue
            stale = max(0.0, now - float(rec.get("time", now)))
            rps = None
            if prev is not None and rec.get("time") != prev.get("time"):
                dt = max(1e-3, float(rec["time"]) - float(prev["time"]))
                rps = max(0, int(rec.get("requests", 0)) - int(prev.get("requests", 0))) / dt
            lag = float(rec.get("loop_lag_max_ms", 0.0))
            if stale > STALE_AFTER_S:
                # The worker could not publish for this long: its loop was blocked at least that long.
                lag = max(lag, stale * 1000)
            rows.append(
                WorkerStats(
                    pid=pid,
                    cpu_percent=proc.cpu_percent,
                    rss_bytes=proc.rss_bytes,
                    in_flight=rec.get("in_flight"),
                    loop_lag_ms=lag,
                    requests_per_s=rps,
                    stale_s=round(stale, 2),
                    threads=proc.threads,
                    threads_busy=_maybe_float(rec.get("threads_busy")),
                    threads_limit=_maybe_int(rec.get("threads_limit")),
                )
            )
            pool = rec.get("pool")
            counters = rec.get("counters") or {}
            prev_counters = (prev or {}).get("counters") or {}
            connect_errors = max(0, counters.get("db_connect_errors", 0) - prev_counters.get("db_connect_errors", 0))
            if pool:
                prev_pool = (prev or {}).get("pool") or {}
                wait_ms = max(0, pool.get("requests_wait_ms", 0) - prev_pool.get("requests_wait_ms", 0))
                errors = sum(
                    max(0, pool.get(k, 0) - prev_pool.get(k, 0))
                    for k in ("requests_errors", "requests_timeouts", "connections_errors")
                )
                pools.append(
                    PoolStats(
                        pid=pid,
                        size=pool.get("pool_size", 0),
                        available=pool.get("pool_available", 0),
                        waiting=pool.get("requests_waiting", 0),
                        wait_ms=float(wait_ms),
                        max=pool.get("pool_max"),
                        errors=errors + connect_errors,
                    )
                )
            elif connect_errors:
                pools.append(PoolStats(pid=pid, size=0, available=0, waiting=0, wait_ms=0.0, errors=connect_errors))
            self._previous[pid] = rec
        for gone in set(self._previous) - set(workers):
            del self._previous[gone]
        return rows, pools


_NUMBERS = ("time", "requests", "loop_lag_max_ms", "in_flight", "threads_busy", "threads_limit")


def record_problem(rec: Any) -> str | None:
    """What is wrong with a worker's stats record, or None when every field the collector reads has its type."""
    if not isinstance(rec, dict):
        return f"a {type(rec).__name__}, not a JSON object"
    if not _is_number(rec.get("time")):
        return "no number in `time`"
    for key in _NUMBERS[1:]:
        if key in rec and rec[key] is not None and not _is_number(rec[key]):
            return f"`{key}` is {rec[key]!r}, not a number"
    for group in ("pool", "counters"):
        value = rec.get(group)
        if value is None:
            continue
        if not isinstance(value, dict):
            return f"`{group}` is not an object"
        bad = [k for k, v in value.items() if v is not None and not _is_number(v)]
        if bad:
            return f"`{group}.{bad[0]}` is not a number"
    return None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _maybe_float(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _maybe_int(value: Any) -> int | None:
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else None


class OutsideCollector:
    """The CPU of processes outside loadtui's tree: another program competing for the cores disturbs the figures.

    Scanning every process costs a few milliseconds, so it runs only in seconds when the machine is busier than
    loadtui's own processes explain; CPU is the difference of each process's CPU time between two scans a second
    apart. Excluded: loadtui and everything it started (the app, the load generator, the embedded PostgreSQL),
    any PostgreSQL server (the database under test), the app loadtui was pointed at (`app_port`), kernel threads.
    """

    MIN_PERCENT = 5.0
    """% of one core: quieter processes are not listed."""
    GATE_CORES = 0.1
    """Cores of CPU the measured processes do not explain before the processes are scanned."""
    SCAN_EVERY_S = 3.0
    """Seconds between two scans (one costs about 9 ms with 8 workers): the seconds between reuse the last result,
    and the rule judges a 5-second window, so a program that competes for a few seconds is still seen."""
    MAX_GAP_S = 7.0
    """Two scans further apart than this are not compared (the first is only a start)."""
    LISTED = 5

    def __init__(self, root: int | None = None) -> None:
        self._root = root if root is not None else os.getpid()
        self._last: dict[int, tuple[float, float]] = {}
        self._at = 0.0
        self._result: list[OutsideProcess] = []
        self.app_port: int | None = None
        """The port of an app loadtui did not start but loads on this machine (`--host` on loopback)."""

    def sample(self, machine_percent: float | None, measured_percent: float, cores: int) -> list[OutsideProcess]:
        """The busiest outside processes over the last second, when the machine's CPU (`machine_percent` of all
        cores) exceeds what the measured processes used (`measured_percent` of one core); else nothing."""
        if machine_percent is None or machine_percent / 100 * cores - measured_percent / 100 < self.GATE_CORES:
            self._last.clear()
            self._result, self._at = [], 0.0
            return []
        now = time.monotonic()
        gap = now - self._at
        if self._at and gap < self.SCAN_EVERY_S:
            return self._result
        procs = [p.info | {"pid": p.pid} for p in psutil.process_iter(["name", "cpu_times", "create_time", "ppid"])]
        ours = self._ours({int(i["pid"]): i.get("ppid") or 0 for i in procs})
        seen: dict[int, tuple[float, float]] = {}
        out: list[OutsideProcess] = []
        for info in procs:
            pid, times = int(info["pid"]), info.get("cpu_times")
            if pid in ours or times is None or info.get("ppid") in (0, 2) or info.get("name") == "postgres":
                continue
            used = times.user + times.system
            seen[pid] = (info.get("create_time") or 0.0, used)
            before = self._last.get(pid)
            if before is None or before[0] != seen[pid][0] or gap > self.MAX_GAP_S or gap <= 0:
                continue
            percent = (used - before[1]) / gap * 100
            if percent >= self.MIN_PERCENT:
                out.append(OutsideProcess(pid=pid, name=str(info.get("name") or "?"), cpu_percent=round(percent, 1)))
        self._last, self._at = seen, now
        self._result = sorted(out, key=lambda o: -o.cpu_percent)[: self.LISTED]
        return self._result

    def _ours(self, parents: dict[int, int]) -> set[int]:
        """loadtui's process and its whole tree, and the family of the app it loads on this machine (`app_port`)."""
        roots = {self._root}
        if self.app_port is not None:
            try:
                listening = {
                    c.pid
                    for c in psutil.net_connections(kind="tcp")
                    if c.pid and c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == self.app_port
                }
            except psutil.Error:
                listening = set()
            roots |= {parents.get(pid, pid) if parents.get(pid, 0) > 2 else pid for pid in listening}
        return tree(parents, roots)


def tree(parents: dict[int, int], roots: set[int]) -> set[int]:
    """`roots` and every process below them, from each pid's parent (one scan of the process table)."""
    children: dict[int, list[int]] = {}
    for pid, ppid in parents.items():
        children.setdefault(ppid, []).append(pid)
    found, todo = set(roots), list(roots)
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def steal_percent() -> float | None:
    """CPU time the hypervisor gave other guests since the last call, % of all cores (None where not reported)."""
    try:
        return getattr(psutil.cpu_times_percent(None), "steal", None)
    except (psutil.Error, OSError):
        return None
