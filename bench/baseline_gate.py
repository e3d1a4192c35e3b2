"""Calibrate the baseline gate (`loadtui compare`, headless `--baseline`): how often it flags the same configuration
run twice (A/A), and how often it catches the sample app made slower by a known share (A/B).

    python bench/baseline_gate.py [--runs 6] [--repeats 3] [--duration 25]

Runs `loadtui headless` on the sample app (crud, one worker: CPU-bound, so a request's CPU sets the throughput), A
runs as they are, B runs with `SAMPLE_APP_WORK_US` spinning the CPU for 10%, 20% and 40% of a request's measured CPU
before each request. Runs alternate (A, B10, B20, B40, A, ...) so that drift of this shared machine falls on all
alike. Every A/A pair and every A/B pair is then compared, over the first 10 steady seconds and over all of them.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import table
from loadtui.results.compare import compare, steady_by_segment
from loadtui.results.recorder import SessionLog, read_log

SLOWDOWNS = (10, 20, 40)
GATE = 10.0
"""--max-regression of the gate, percent."""


def record(path: Path, duration: float, work_us: int) -> SessionLog:
    """One headless run of the sample app (crud, 1 worker, 30 users), `work_us` of extra CPU per request."""
    env = os.environ | {"SAMPLE_APP_WORK_US": str(work_us)}
    argv = [sys.executable, "-m", "loadtui", "headless", "--scenario", "crud", "--workers", "1", "--users", "30"]
    argv += ["--duration", str(duration), "--record", str(path), "--no-auto-confirm"]
    subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, timeout=300)
    return read_log(path, slim=True)


def cpu_ms_per_request(log: SessionLog) -> float:
    """The workers' CPU per request over the steady seconds, in ms."""
    rows = [r for _, steady in steady_by_segment(log) for r in steady if r.rps > 0 and r.app_cpu_percent]
    return statistics.fmean(r.app_cpu_percent / 100 / r.rps * 1000 for r in rows if r.app_cpu_percent is not None)


def first(log: SessionLog, seconds: int) -> SessionLog:
    """The log cut after its first `seconds` steady seconds (what a shorter run would have measured)."""
    steady = [r.t for _, rows in steady_by_segment(log) for r in rows]
    if len(steady) <= seconds:
        return log
    end = steady[seconds - 1]
    return dataclasses.replace(log, ticks=[t for t in log.ticks if t.t <= end])


def judge(base: SessionLog, new: SessionLog) -> tuple[bool, bool, float]:
    """(req/s significantly different, gate flagged a regression, req/s change)."""
    result = compare(base, new, GATE)
    if not result.segments or result.segments[0].untrusted:
        return False, False, float("nan")
    rps = next(f for f in result.segments[0].figures if f.figure == "req/s")
    change = rps.change.point if rps.change else float("nan")
    return bool(rps.change and rps.change.significant), bool(result.regressions), change


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=6, help="A runs (every pair of them is an A/A comparison)")
    parser.add_argument("--repeats", type=int, default=3, help="B runs per slowdown")
    parser.add_argument("--duration", type=float, default=25.0, help="seconds of load per run")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="loadtui-bench-gate-"))
    a_logs = [record(work / "a0.jsonl", args.duration, 0)]
    cpu = cpu_ms_per_request(a_logs[0])
    print(f"a request costs {cpu:.3f} ms of the worker's CPU; B runs add 10/20/40% of it", file=sys.stderr)
    b_logs: dict[int, list[SessionLog]] = {s: [] for s in SLOWDOWNS}
    for i in range(max(args.runs - 1, args.repeats)):
        if i < args.repeats:
            for s in SLOWDOWNS:
                b_logs[s].append(record(work / f"b{s}-{i}.jsonl", args.duration, round(cpu * 1000 * s / 100)))
        if i + 1 < args.runs:
            a_logs.append(record(work / f"a{i + 1}.jsonl", args.duration, 0))
        print(f"round {i + 1} recorded", file=sys.stderr)
    rows = []
    for seconds in (10, 10_000):
        length = f"first {seconds} s" if seconds < 10_000 else "all steady"
        pairs = [judge(first(x, seconds), first(y, seconds)) for x, y in itertools.combinations(a_logs, 2)]
        rows.append(
            [
                "A/A (same app)",
                length,
                len(pairs),
                f"{sum(p[0] for p in pairs) / len(pairs):.0%}",
                f"{sum(p[1] for p in pairs) / len(pairs):.0%}",
                f"{statistics.median(abs(p[2]) for p in pairs):.1%}",
            ]
        )
        for s in SLOWDOWNS:
            pairs = [judge(first(a, seconds), first(b, seconds)) for a in a_logs for b in b_logs[s]]
            rows.append(
                [
                    f"A/B ({s}% more CPU)",
                    length,
                    len(pairs),
                    f"{sum(p[0] for p in pairs) / len(pairs):.0%}",
                    f"{sum(p[1] for p in pairs) / len(pairs):.0%}",
                    f"{statistics.median(p[2] for p in pairs):+.1%}",
                ]
            )
    print()
    headers = [
        "pairs of runs",
        "measured",
        "pairs",
        "req/s differs",
        f"gate (>{GATE:g}%) flags",
        "req/s change (median)",
    ]
    print(table(headers, rows))


if __name__ == "__main__":
    main()
