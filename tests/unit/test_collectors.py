"""Process figures: one psutil object per pid across seconds, each pid sampled once per second."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from loadtui.measure.collectors import ProcessCollector


def test_a_gone_pid_is_dropped() -> None:
    collector = ProcessCollector()
    assert collector.sample([2**22 + 12345]) == {}


def test_a_stats_record_of_the_wrong_shape_is_dropped_and_counted(tmp_path: Path) -> None:
    import json

    from loadtui.measure.collectors import AppStatsCollector
    from loadtui.model import ProcessStats

    good = {"time": time.time(), "requests": 10, "in_flight": 1, "loop_lag_max_ms": 2.0, "pool": {"pool_size": 4}}
    records: dict[int, object] = {
        1: good,
        2: [1, 2, 3],
        3: {**good, "requests": "many"},
        4: {**good, "pool": {"pool_size": "four"}},
        5: {**good, "time": None},
        6: {**good, "pool": [1]},
    }
    for pid, rec in records.items():
        (tmp_path / f"{pid}.json").write_text(json.dumps(rec))
    (tmp_path / "7.json").write_text('{"time": Infinity}')
    collector = AppStatsCollector(tmp_path)
    procs = {pid: ProcessStats(pid=pid, cpu_percent=1.0, rss_bytes=1, threads=1) for pid in range(1, 8)}
    rows, pools = collector.sample(procs)
    assert len(rows) == 7  # every worker keeps its process figures
    assert [r.pid for r in rows if r.in_flight is not None] == [1] and [p.pid for p in pools] == [1]
    assert collector.rejected == 6 and collector.last_rejected == "worker 7: no number in `time`"


def test_the_outside_scan_runs_every_few_seconds_not_every_second(monkeypatch: pytest.MonkeyPatch) -> None:
    """One scan of the process table costs milliseconds a tick: between scans the last result is reused."""
    import psutil

    from loadtui.measure import collectors

    scans: list[float] = []
    clock = [100.0]
    monkeypatch.setattr("loadtui.measure.collectors.time.monotonic", lambda: clock[0])

    def process_iter(attrs: list[str]) -> Any:
        scans.append(clock[0])
        return iter(())

    monkeypatch.setattr(psutil, "process_iter", process_iter)
    outside = collectors.OutsideCollector(root=1)
    for _ in range(7):
        outside.sample(machine_percent=90.0, measured_percent=10.0, cores=2)
        clock[0] += 1.0
    assert scans == [100.0, 103.0, 106.0]
    assert outside.sample(machine_percent=5.0, measured_percent=10.0, cores=2) == []  # quiet: no scan
    assert len(scans) == 3
