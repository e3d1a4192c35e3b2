"""Load by arrival rate on the real stack: the rate holds, split over load-generator processes, and a search by rate
finds what a blocked event loop sustains."""

from __future__ import annotations

import statistics
from pathlib import Path

from loadtui.results.recorder import read_log
from loadtui.results.segments import Row, steady_rows
from tests.integration.test_sweeps import headless


def test_a_rate_split_over_two_load_generator_processes_holds_its_target_and_is_recorded(tmp_path: Path) -> None:
    run, summary = headless(
        tmp_path, "--scenario", "crud", "--workers", "1", "--rate", "150", "--loadgen-processes", "2",
        "--duration", "12",
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    log = read_log(tmp_path / "sweep.jsonl")
    assert log.header["config"]["rate"] == 150.0 and log.header["config"]["arrivals"] == "uniform"
    # The seconds the summary calls steady: all but the segment's first three (on a busy machine the load starts a
    # second or more into the session, and its first second is partial whatever the clock says).
    (segment,) = [s for s in summary["segments"] if s["steady_seconds"]]
    steady = steady_rows([Row.of(t) for t in log.ticks], None)
    assert len(steady) == segment["steady_seconds"] >= 7 and all(t.achieved_rate is not None for t in steady)
    assert statistics.fmean(t.target_rate or 0 for t in steady) == 150.0
    # Each process reports once a second on its own clock; the master's seconds are its workers' own (a second
    # that got no report of one of them used to read half the rate). (Poisson arrivals: tests/unit.)
    finished = statistics.fmean(t.achieved_rate or 0 for t in steady)
    assert abs(finished / 150 - 1) < 0.03, [t.achieved_rate for t in steady]
    assert abs(statistics.fmean(t.rps for t in steady) / 150 - 1) < 0.03
    assert min(t.rps for t in steady) > 0.9 * 150, [t.rps for t in steady]
    assert not any(t.dropped_rps for t in steady)
    assert segment["target_rate"] == 150.0 and "150 req/s" in segment["label"]
    assert "rate 150→" in run.stdout and "asked 150.0/s finished" in run.stdout


def test_a_search_by_rate_stops_where_a_blocked_loop_falls_behind(tmp_path: Path) -> None:
    # One blocked loop with 30 ms per request finishes at most 33 a second: 10 and 20 are kept up with, 40 is not.
    run, summary = headless(
        tmp_path, "--scenario", "blocking", "--sleep-ms", "30", "--vary", "rate=auto", "--step", "4",
        "--no-auto-confirm",
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    assert [p["changes"] for p in summary["plan"]] == [{"rate": 10.0}, {"rate": 20.0}, {"rate": 40.0}]
    assert summary["verdict"]["knee"] == 20.0
    assert "knee: 20 req/s sustained (40 req/s: finished" in run.stdout
    behind = summary["plan"][-1]["segment"]
    assert behind["achieved_rate"] < 36 and "backlog" in behind["findings"]
