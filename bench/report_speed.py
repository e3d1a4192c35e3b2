"""A one-hour session log at 1 Hz with 8 workers turned into a report: how long it takes.

    python bench/report_speed.py [--minutes 60] [--workers 8]

Writes a synthetic but full-sized log (every Tick field filled: 5 endpoints, 8 worker rows and pools, the load
generator, PostgreSQL by state, a configuration change every 10 minutes, marks and findings) with the real
Recorder, then runs `loadtui report` on it as a user would, CSV export included. Target (issue 6): under 10 s.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import table
from loadtui.config import RunConfig
from loadtui.model import (
    DbStats,
    EndpointStats,
    ErrorCount,
    Event,
    Finding,
    Latency,
    LoadgenStats,
    PoolStats,
    ProcessStats,
    Tick,
    WorkerStats,
)
from loadtui.results.recorder import Recorder, read_log

ENDPOINTS = [
    ("GET", "/tasks/"),
    ("GET", "/tasks/{id}"),
    ("POST", "/tasks/"),
    ("DELETE", "/tasks/{id}"),
    ("GET", "/ping/"),
]


def synthetic_log(path: Path, minutes: int, workers: int) -> None:
    rng = random.Random(1)
    rec = Recorder(path)
    config = RunConfig(workers=workers, users=100, pool_max=5)
    rec.header(config, dt.datetime.now(dt.UTC))
    finding = Finding("pool-exhausted", "warning", "The connection pool is exhausted", "12 waiting", "raise ]")
    segment = 0
    for second in range(1, minutes * 60 + 1):
        if second % 600 == 0:
            segment += 1
            cfg = config.replace(pool_max=5 + segment)
            rec.event(
                Event(
                    second - 0.5, "config", f"pool max → {cfg.pool_max}", {"segment": segment, "config": cfg.to_dict()}
                )
            )
        if second % 300 == 0:
            rec.event(Event(second + 0.1, "mark", "checkpoint", {"note": f"minute {second // 60}"}))
        rps = 2000 + rng.uniform(-100, 100)
        pids = [5000 + i for i in range(workers)]
        rec.tick(Tick(
            t=float(second), rps=rps, fail_rps=rng.choice([0.0, 0.0, 0.0, 1.0]), users=100,
            latency=Latency(p50=9.0 + rng.random(), p95=31.0 + rng.random() * 5, p99=48.0, max=120.0),
            endpoints=[EndpointStats(m, n, rps / 5, 0.0, 9.0, 30.0, 45.0) for m, n in ENDPOINTS],
            errors=[ErrorCount("POST", "/tasks/", "HTTP 503: database unavailable", 1)] if second % 7 == 0 else [],
            workers=[WorkerStats(pid=p, cpu_percent=60 + rng.random() * 30, rss_bytes=80 * 2**20, in_flight=3,
                                 loop_lag_ms=1.2, threads=4, requests_per_s=rps / workers, stale_s=0.3) for p in pids],
            app=ProcessStats(pid=4999, cpu_percent=0.5, rss_bytes=40 * 2**20),
            loadgen=LoadgenStats(pids=[6000], cpu_percent=70.0, cores=1,
                                 per_process=[ProcessStats(pid=6000, cpu_percent=70.0, rss_bytes=90 * 2**20)]),
            db=DbStats(connections=5 * workers, max_connections=100, by_state={"active": 6, "idle": 5 * workers - 6},
                       by_application={f"sample_app-{p}": 5 for p in pids}, reserved=3),
            pools=[PoolStats(pid=p, size=5, available=1, waiting=2, wait_ms=40.0, max=5, errors=0) for p in pids],
            cpu_count=2, machine_cpu_percent=95.0, segment=segment,
            findings=[finding] if (second // 120) % 2 else [],
        ))  # fmt: skip
    rec.summary({"seconds": minutes * 60})
    rec.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=int, default=60)
    parser.add_argument("--workers", type=int, default=8)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="loadtui-report-"))
    log = work / "hour.jsonl"
    synthetic_log(log, args.minutes, args.workers)
    began = time.perf_counter()
    read_log(log)
    read_s = time.perf_counter() - began
    began = time.perf_counter()
    subprocess.run([sys.executable, "-m", "loadtui", "report", str(log), "-o", str(work / "hour.html"),
                    "--csv", str(work / "csv")], check=True, stdout=subprocess.DEVNULL)  # fmt: skip
    total_s = time.perf_counter() - began
    mib = 2**20
    print(table(["what", "measured", "target"], [
        ["session log", f"{args.minutes * 60} ticks · {args.workers} workers · {log.stat().st_size / mib:.1f} MiB", ""],
        ["read_log alone (s)", f"{read_s:.2f}", ""],
        ["`loadtui report` with --csv, whole command (s)", f"{total_s:.2f}", "< 10"],
        ["report size (MiB)", f"{(work / 'hour.html').stat().st_size / mib:.1f}", ""],
    ]))  # fmt: skip
    print(f"\n{'ok' if total_s < 10 else 'OVER TARGET'} · files in {work}")


if __name__ == "__main__":
    main()
