"""Shared parts of the benchmarks: the real stack (embedded PostgreSQL + sample app), tables, log reading.

Benchmarks report ratios and counts measured side by side in one run, because this machine is shared and noisy;
absolute numbers are printed for context only.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from loadtui.config import RunConfig
from loadtui.errors import UsageError
from loadtui.procs.processes import Guardian
from loadtui.results.recorder import read_log
from loadtui.stack.database import EmbeddedDatabase
from loadtui.stack.supervisor import AppSupervisor


@contextmanager
def sample_app(config: RunConfig) -> Iterator[AppSupervisor]:
    """Embedded PostgreSQL and the sample app with `config`'s workers and pool, stopped on exit."""
    guardian = Guardian()
    guardian.start()
    db = EmbeddedDatabase(guardian=guardian, max_connections=config.db_max_connections)
    app = AppSupervisor(run_dir=Path(tempfile.mkdtemp(prefix="loadtui-bench-")), guardian=guardian)
    try:
        db.start()
        app.start(config, db.app_dsn)
        yield app
    finally:
        app.stop()
        db.stop()
        guardian.close()


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain-text table, right-aligned, for the terminal and the README."""
    cells = [[str(h) for h in headers]] + [[_fmt(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3f}" if abs(v) < 10 else f"{v:.1f}"
    return str(v)


def steady_rps(log: Path, skip: float = 3.0) -> float:
    """Mean requests/s of a session log's ticks, skipping the first `skip` seconds of load."""
    ticks = [t for t in read_log(log).ticks if t.users > 0]
    if not ticks:
        return 0.0
    start = ticks[0].t + skip
    return statistics.fmean(t.rps for t in ticks if t.t >= start) if any(t.t >= start for t in ticks) else 0.0


def wait_ticks(log: Path, count: int, timeout: float = 90) -> None:
    """Wait until the session log at `log` holds `count` ticks."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if len(read_log(log).ticks) >= count:
                return
        except UsageError:
            pass  # not written yet, or only half of its header
        time.sleep(0.2)
    raise SystemExit(f"no {count} ticks in {log} after {timeout} s")
