"""Load by arrival rate (`--rate`) against users (the closed model), side by side in one run.

    python bench/arrival_rate.py [--seconds 40] [--stall-every 500]

1. **Holding the rate.** A one-worker app that spins 500 µs of CPU per request (an endpoint's work), then one that
   answers at once; the closed model's capacity is measured first (50 users, no pause: as many requests a second as
   the app and the load generator manage together on this machine), then the open model is asked for 50%, 75%, 90%
   and 100% of it. Printed: finished / asked, and how many arrivals were dropped.
2. **A stall.** The same app blocks its event loop for 2 s on every `--stall-every`-th request. The closed model runs
   4 users paced to 25 requests a second each (100 req/s), the open model 100 arrivals a second. Percentiles are
   over every request of the run (the records' per-second histograms merged), not medians of seconds: the closed
   model counts one delayed request per user per stall, the open model every request that arrived during it.

Loopback only; every run stops by itself.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from _common import table
from loadtui.loadgen import LoadGen
from loadtui.loadgen.stats import percentile
from loadtui.procs.processes import free_port

APPS = Path(__file__).with_name("apps")
LOCUSTFILE = APPS / "stall_locustfile.py"
SLOW_MS = 100
"""A request slower than this counts as delayed (the app answers in 1-2 ms)."""


class App:
    """The stall app under uvicorn, one worker, on loopback."""

    def __init__(self, stall_every: int, work_us: int = 0) -> None:
        self.port = free_port("127.0.0.1")
        env = os.environ | {"STALL_EVERY": str(stall_every), "STALL_S": "2", "WORK_US": str(work_us)}
        argv = [sys.executable, "-m", "uvicorn", "stall_app:app", "--app-dir", str(APPS), "--host", "127.0.0.1"]
        argv += ["--port", str(self.port), "--workers", "1", "--log-level", "warning", "--no-access-log"]
        self.proc = subprocess.Popen(argv, env=env)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("the stall app did not start")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


class Records:
    """The load generator's per-second records, kept from a point on."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.kept: list[dict[str, Any]] = []

    def add(self, record: dict[str, Any]) -> None:
        with self.lock:
            self.kept.append(record)

    def take(self) -> list[dict[str, Any]]:
        with self.lock:
            out, self.kept = self.kept, []
        return out


def loadgen(port: int, records: Records, per_user_rps: float) -> LoadGen:
    os.environ["PER_USER_RPS"] = str(per_user_rps)  # read by the locustfile in the child
    gen = LoadGen(host=f"http://127.0.0.1:{port}", locustfile=LOCUSTFILE, scenario=None, on_stats=records.add)
    gen.start()
    return gen


def measure(records: Records, seconds: float, skip: int = 2) -> list[dict[str, Any]]:
    """The records of the next `seconds`, without the first `skip` (the change settling)."""
    records.take()
    time.sleep(seconds)
    return records.take()[skip:]


def merged(rows: list[dict[str, Any]], key: str = "histogram") -> Counter[int]:
    out: Counter[int] = Counter()
    for r in rows:
        source = r.get("open", {}) if key == "service_histogram" else r
        out.update({int(k): int(v) for k, v in (source.get(key) or {}).items()})
    return out


def holding(seconds: float, work_us: int) -> list[list[str]]:
    app, records = App(stall_every=0, work_us=work_us), Records()
    gen = loadgen(app.port, records, per_user_rps=0)
    rows = []
    try:
        gen.set_users(50, 50)
        closed = measure(records, seconds / 2, skip=3)
        capacity = statistics.fmean(r["rps"] for r in closed)
        rows.append([f"{work_us} µs", "users 50 (closed)", "—", f"{capacity:,.0f}", "—", "—", "—"])
        for share in (0.5, 0.75, 0.9, 1.0):
            target = round(capacity * share)
            gen.set_rate(target, "uniform", 1000)
            got = measure(records, seconds / 2, skip=3)
            finished = statistics.fmean(r["open"]["achieved_rate"] for r in got)
            dropped = sum(r["open"]["dropped_rps"] for r in got)
            late = percentile(merged(got), 0.99)
            service = percentile(merged(got, "service_histogram"), 0.99)
            rows.append(
                [
                    f"{work_us} µs",
                    f"rate {share:.0%} of capacity",
                    f"{target:,}",
                    f"{finished:,.0f}",
                    f"{finished / target:.3f}",
                    f"{dropped:.0f}",
                    f"{late:.0f} / {service:.0f}",
                ]
            )
    finally:
        gen.stop()
        app.stop()
    return rows


def stalled(seconds: float, stall_every: int) -> list[list[str]]:
    rows = []
    for model in ("closed", "open"):
        app, records = App(stall_every=stall_every), Records()
        gen = loadgen(app.port, records, per_user_rps=25 if model == "closed" else 0)
        try:
            if model == "closed":
                gen.set_users(4, 4)
            else:
                gen.set_rate(100, "uniform", 1000)
            got = measure(records, seconds)
        finally:
            gen.stop()
            app.stop()
        hist = merged(got)
        total = sum(hist.values())
        stalls = total // stall_every
        slow = sum(n for ms, n in hist.items() if ms >= SLOW_MS)
        rows.append(
            [
                "4 users × 25/s (closed)" if model == "closed" else "rate 100/s (open)",
                f"{total:,}",
                f"{stalls * 2 / seconds:.1%}",
                f"{slow / total:.1%}",
                f"{percentile(hist, 0.5):.0f}",
                f"{percentile(hist, 0.95):.0f}",
                f"{percentile(hist, 0.99):.0f}",
                f"{max(hist):,}",
            ]
        )
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=40.0, help="seconds per stall run (half per rate step)")
    p.add_argument("--stall-every", type=int, default=500)
    args = p.parse_args()
    print("Holding the rate (a one-worker app; p99 from the intended start / service only, ms)")
    rows = [row for work in (500, 0) for row in holding(min(args.seconds, 24.0), work)]
    print(table(["app CPU/request", "load", "asked/s", "finished/s", "finished/asked", "dropped", "p99 ms"], rows))
    print()
    print(
        f"A 2 s stall every {args.stall_every} requests ({args.seconds:g} s each; percentiles over every request, ms)"
    )
    print(
        table(
            ["load", "requests", "time stalled", f"requests ≥ {SLOW_MS} ms", "p50", "p95", "p99", "max"],
            stalled(args.seconds, args.stall_every),
        )
    )


if __name__ == "__main__":
    main()
