"""Soak: the dashboard (and the session inside it) at saturation for minutes: memory, open files, lost seconds.

    python bench/soak.py [--minutes 10]

Runs `loadtui` in a real terminal (tmux, 160×48) with 8 workers and 20 users of the CRUD scenario on this machine
(both cores busy), and prints, each minute, the dashboard process's RSS, its open file descriptors and the number of
processes loadtui runs. At the end: the seconds the log should hold against the ticks it holds (lost ticks).

Targets (issue 14): RSS and open files flat after warm-up, 0 ticks lost.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import psutil

from _common import table
from loadtui.results.recorder import read_log
from overhead import dashboard_cpu


def soak(proc: psutil.Process, seconds: float) -> tuple[list[list[object]], Path]:
    """Sample the dashboard each minute for `seconds`; return the rows and its session log."""
    argv = proc.cmdline()
    log = Path(argv[argv.index("--record") + 1])
    rows: list[list[object]] = []
    began = time.monotonic()
    minute = 0
    while True:
        children = proc.children(recursive=True)
        rows.append([minute, round(proc.memory_info().rss / 2**20, 1), proc.num_fds(), len(children)])
        left = seconds - (time.monotonic() - began)
        if left <= 0:
            return rows, log
        time.sleep(min(60.0, left))
        minute += 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    args = parser.parse_args()
    rows, log = dashboard_cpu(args.minutes * 60, measure=soak)
    print(table(["minute", "dashboard RSS MiB", "open fds", "processes under loadtui"], rows))
    ticks = read_log(log).ticks
    expected = round(ticks[-1].t - ticks[0].t) + 1 if ticks else 0
    print(f"ticks: {len(ticks)} recorded of {expected} seconds; lost {max(0, expected - len(ticks))}")


if __name__ == "__main__":
    main()
