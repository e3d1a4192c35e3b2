"""CSV export of a session log (`loadtui report --csv DIR`): per-second rows with Locust's stats-history columns
followed by loadtui's, and the segments; written through temporary files that are never followed links.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import errno
import os
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

from loadtui.results import segments
from loadtui.results.recorder import SessionLog, read_ticks

SEGMENT_COLUMNS = (
    ("label", "configuration"),
    ("steady_seconds", "steady s"),
    ("rps", "req/s"),
    ("fail_rps", "fail/s"),
    ("p50", "p50 ms"),
    ("p95", "p95 ms"),
    ("p99", "p99 ms"),
    ("cpu_per_worker", "CPU/worker %"),
    ("app_cpu_percent", "app CPU %"),
    ("loadgen_cpu_percent", "load gen CPU %"),
    ("db_connections", "DB conns"),
    ("pool_waiting", "pool waiting"),
    ("findings", "findings"),
    ("marks", "marks"),
)


OPEN_COLUMNS = (
    ("target_rate", "rate asked/s"),
    ("achieved_rate", "finished/s"),
    ("dropped_rps", "dropped/s"),
    ("in_flight", "in flight"),
    ("service_p95", "service p95 ms"),
)
"""Columns of runs by arrival rate (`--rate`), after the latencies (which then count from the intended start)."""


def segment_columns(segs: Sequence[segments.Segment]) -> tuple[tuple[str, str], ...]:
    """The table's columns: the open model's too when a segment ran by arrival rate."""
    if not any(seg.target_rate is not None for seg in segs):
        return SEGMENT_COLUMNS
    at = [key for key, _ in SEGMENT_COLUMNS].index("p99") + 1
    return SEGMENT_COLUMNS[:at] + OPEN_COLUMNS + SEGMENT_COLUMNS[at:]


def log_segments(log: SessionLog) -> list[segments.Segment]:
    """Steady-state figures per configuration segment, with the marks made in each."""
    return segments.split(log.ticks, log.segment_configs(), events=log.events)


TICK_COLUMNS = (
    "Timestamp",
    "Seconds",
    "User Count",
    "Type",
    "Name",
    "Requests/s",
    "Failures/s",
    "50%",
    "95%",
    "99%",
    "100%",
    "App CPU %",
    "Workers",
    "Loadgen CPU %",
    "DB connections",
    "Pool waiting",
    "Segment",
)
"""Locust's stats history columns first (Timestamp in Unix seconds, Type, Name, "Aggregated" rows), then ours."""


def tick_rows(log: SessionLog) -> Iterable[list[Any]]:
    """Per-second rows: one per endpoint and one "Aggregated", like Locust's `--csv-full-history`."""
    try:
        start = dt.datetime.fromisoformat(str(log.header.get("started_at"))).timestamp()
    except ValueError:
        start = 0.0
    # A slim log (the report's) has no endpoints in memory: they are streamed from the file again.
    for k in read_ticks(log.path) if log.slim else log.ticks:
        stamp = int(start + k.t)
        for e in k.endpoints:
            yield [
                stamp,
                k.t,
                k.users,
                e.method,
                e.name,
                e.rps,
                e.fail_rps,
                e.p50,
                e.p95,
                e.p99,
                None,
                None,
                None,
                None,
                None,
                None,
                k.segment,
            ]
        yield [
            stamp,
            k.t,
            k.users,
            "",
            "Aggregated",
            k.rps,
            k.fail_rps,
            k.latency.p50,
            k.latency.p95,
            k.latency.p99,
            k.latency.max,
            round(k.app_cpu_percent, 1),
            len(k.workers),
            k.loadgen_cpu_percent,
            k.db.connections if k.db else None,
            k.pool_waiting or 0,
            k.segment,
        ]


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
"""A spreadsheet treats a cell starting with one of these as a formula (OWASP "CSV injection")."""


def csv_cell(value: Any) -> Any:
    """A value safe to open in a spreadsheet: text that would start a formula gets a leading apostrophe."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


@contextlib.contextmanager
def replacing(path: Path) -> Iterator[TextIO]:
    """Write `path` whole or not at all, safely in a shared folder: into a new file of an unguessable name beside it
    (created exclusively, so a planted file or link is never followed), renamed over `path` once complete. A link at
    `path` itself is refused."""
    if path.is_symlink():
        raise OSError(errno.ELOOP, "it is a symbolic link; write to a plain file")
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            yield f
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_csv(log: SessionLog, directory: Path) -> list[Path]:
    """`<log>_ticks.csv` (per second) and `<log>_segments.csv` (steady state per segment); returns their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    ticks_path = directory / f"{log.path.stem}_ticks.csv"
    with replacing(ticks_path) as f:
        w = csv.writer(f)
        w.writerow(TICK_COLUMNS)
        for row in tick_rows(log):
            w.writerow(csv_cell(v) for v in row)
    segs_path = directory / f"{log.path.stem}_segments.csv"
    segs = log_segments(log)
    with replacing(segs_path) as f:
        fields = [key for key, _ in segment_columns(segs)] + ["index", "start_t", "end_t", "seconds"]
        w2 = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        w2.writeheader()
        for s in segs:
            d = s.to_dict()
            w2.writerow({k: csv_cell("; ".join(v) if isinstance(v, list) else v) for k, v in d.items()})
    return [ticks_path, segs_path]
