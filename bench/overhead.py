"""What loadtui itself costs: collection time per second, and the CPU of its own process.

    python bench/overhead.py [--seconds 30]

Rows:
- collection: the time to build one Tick (processes, pg_stat_activity, pool files) with 8 workers, measured
  in-process around `Session.collect` (issue 3: under 20 ms);
- headless: CPU of the `loadtui headless` process itself (not the app, not the load generator) at 1 Hz with
  4 workers, as a share of one core (issue 3: ≤ 3%);
- dashboard: CPU of the `loadtui` dashboard process in a real terminal (tmux, 160×48) with 8 workers, as a share
  of one core (issue 4: ≤ 5%), with its RSS at the start and the end of the window.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

from _common import table, wait_ticks
from loadtui.config import RunConfig
from loadtui.session.core import Session

WARMUP_TICKS = 8
"""Ticks to wait before measuring: start-up, ramp-up and the first cpu_percent samples are not steady state."""


def collection_cost(seconds: float) -> dict[str, float]:
    """Milliseconds per measured second (`Meter.second`) with 8 workers under load."""
    config = RunConfig(workers=8, pool_min=1, pool_max=4, users=16, spawn_rate=16, scenario="crud",
                       record=str(Path(tempfile.mkdtemp()) / "collect.jsonl"))  # fmt: skip
    session = Session(config)
    timings: list[float] = []
    inner = session.meter.second

    def timed(t: float, record: dict[str, Any] | None, cfg: RunConfig) -> Any:
        start = time.perf_counter()
        try:
            return inner(t, record, cfg)
        finally:
            timings.append((time.perf_counter() - start) * 1000)

    session.meter.second = timed  # type: ignore[method-assign,assignment]
    session.open()
    try:
        time.sleep(seconds)
    finally:
        session.close()
    steady = timings[WARMUP_TICKS // 2 :]
    return {
        "n": len(steady),
        "p50": statistics.median(steady),
        "p95": statistics.quantiles(steady, n=20, method="inclusive")[-1],
        "max": max(steady),
    }


def cpu_share(proc: psutil.Process, seconds: float) -> tuple[float, int, int]:
    """The process's CPU over `seconds` as a % of one core; RSS before and after (and each minute, printed)."""
    rss0 = proc.memory_info().rss
    c0 = proc.cpu_times()
    w0 = time.monotonic()
    minutes = []
    while (left := seconds - (time.monotonic() - w0)) > 0:
        time.sleep(min(60.0, left))
        minutes.append(f"{proc.memory_info().rss / 2**20:.1f}")
    c1 = proc.cpu_times()
    wall = time.monotonic() - w0
    used = (c1.user - c0.user) + (c1.system - c0.system)
    if len(minutes) > 1:
        print(f"RSS each minute (MiB): {rss0 / 2**20:.1f} → " + " → ".join(minutes))
    return 100 * used / wall, rss0, proc.memory_info().rss


def headless_cpu(seconds: float) -> tuple[float, int, int]:
    log = Path(tempfile.mkdtemp()) / "headless.jsonl"
    argv = [sys.executable, "-m", "loadtui", "headless", "--duration", str(seconds + 30), "--workers", "4",
            "--pool-max", "5", "--users", "20", "--spawn-rate", "20", "--record", str(log)]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_ticks(log, WARMUP_TICKS)
        return cpu_share(psutil.Process(proc.pid), seconds)
    finally:
        proc.terminate()
        proc.wait(30)


def dashboard_cpu(seconds: float, measure: Callable[[psutil.Process, float], Any] = cpu_share) -> Any:
    log = Path(tempfile.mkdtemp()) / "dashboard.jsonl"
    name = f"loadtui-bench-{int(time.time())}"
    argv = [sys.executable, "-m", "loadtui", "--workers", "8", "--pool-max", "5", "--users", "20",
            "--spawn-rate", "20", "--record", str(log)]  # fmt: skip
    subprocess.run(["tmux", "new-session", "-d", "-s", name, "-x", "160", "-y", "48", *argv], check=True)
    try:
        pane = int(subprocess.run(["tmux", "display-message", "-p", "-t", name, "#{pane_pid}"], check=True,
                                  capture_output=True, text=True).stdout)  # fmt: skip
        wait_ticks(log, WARMUP_TICKS)
        proc = psutil.Process(pane)
        if "loadtui" not in " ".join(proc.cmdline()):
            proc = next(p for p in proc.children(recursive=True) if "loadtui" in " ".join(p.cmdline()))
        return measure(proc, seconds)
    finally:
        subprocess.run(["tmux", "send-keys", "-t", name, "q"], check=False)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and subprocess.run(["tmux", "has-session", "-t", name],
                                                             capture_output=True).returncode == 0:  # fmt: skip
            time.sleep(0.2)
        subprocess.run(["tmux", "kill-session", "-t", name], capture_output=True, check=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30, help="length of each measured window")
    parser.add_argument("--only", choices=["collection", "headless", "dashboard"], default=None,
                        help="measure one row only (e.g. the dashboard's memory over --seconds 600)")  # fmt: skip
    args = parser.parse_args()
    mib = 2**20
    rows: list[list[object]] = []
    if args.only in (None, "collection"):
        cost = collection_cost(args.seconds)
        rows += [
            ["collection of one tick, 8 workers (p50 ms)", f"{cost['p50']:.1f}", "", ""],
            [f"collection of one tick, 8 workers (p95 ms, n={cost['n']})", f"{cost['p95']:.1f}", "< 20", cost["p95"] < 20],
            ["collection of one tick, 8 workers (max ms)", f"{cost['max']:.1f}", "", ""],
        ]  # fmt: skip
    if args.only in (None, "headless"):
        h_cpu, _, _ = headless_cpu(args.seconds)
        rows.append(["headless process CPU, 4 workers (% of a core)", f"{h_cpu:.1f}", "≤ 3", h_cpu <= 3])
    if args.only in (None, "dashboard"):
        d_cpu, rss0, rss1 = dashboard_cpu(args.seconds)
        rows += [
            ["dashboard process CPU, 8 workers (% of a core)", f"{d_cpu:.1f}", "≤ 5", d_cpu <= 5],
            [f"dashboard RSS over {args.seconds:.0f} s (MiB)", f"{rss0 / mib:.1f} → {rss1 / mib:.1f}", "flat", ""],
        ]
    print(table(["what", "measured", "target", "ok"], rows))


if __name__ == "__main__":
    main()
