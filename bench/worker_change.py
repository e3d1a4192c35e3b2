"""Live worker changes under load: failed requests and time to the new worker count, for +1 and −1.

    python bench/worker_change.py [--rounds 3] [--users 20]

A real session (embedded PostgreSQL, the sample app, Locust on the CRUD scenario) starts with 2 workers; each
round adds a worker and removes it again by signal (SIGTTIN/SIGTTOU to uvicorn's supervisor), as the dashboard's
+ and − keys do. "seconds" is from the signal until the new count of workers serve requests (counted, not assumed);
"failed" counts the failed requests in the seconds around the change; the CPU of each worker after it shows the
load reaching the new worker (the users reconnect after +). Target (issue 3): 0 failures, under 2 s.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from _common import table
from loadtui.config import RunConfig
from loadtui.session import Session

SETTLE_TICKS = 4
"""Seconds to wait after a change, so failures caused by it would show in the ticks."""


def wait_ticks(session: Session, n: int) -> None:
    target = session.tick_count + n
    deadline = time.monotonic() + n * 3 + 10
    while session.tick_count < target:
        if time.monotonic() > deadline:
            raise SystemExit("the session stopped ticking")
        time.sleep(0.1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--users", type=int, default=20)
    args = parser.parse_args()
    record = Path(tempfile.mkdtemp(prefix="loadtui-bench-")) / "workers.jsonl"
    config = RunConfig(workers=2, pool_min=1, pool_max=5, users=args.users, spawn_rate=args.users, record=str(record))
    session = Session(config)
    session.open()
    rows: list[list[object]] = []
    try:
        wait_ticks(session, 6)
        for n in range(1, args.rounds + 1):
            for target in (3, 2):
                before = session.tick_count
                session.set_workers(target)
                seconds = float(next(e for e in reversed(session.events) if e.kind == "workers").data["seconds"])
                wait_ticks(session, SETTLE_TICKS)
                window = list(session.ticks)[-(session.tick_count - before + 1) :]
                failed = round(sum(t.fail_rps for t in window))
                served = sum(t.rps for t in window)
                counted = len(session.app.worker_pids()) if session.app else 0
                cpus = " / ".join(f"{w.cpu_percent:.0f}" for w in session.ticks[-1].workers)
                change = f"+1 → {target}" if target == 3 else f"−1 → {target}"
                rows.append([n, change, counted, f"{seconds:.2f}", failed, f"{served:,.0f}", cpus,
                             "ok" if failed == 0 and seconds < 2 and counted == target else "MISSED"])  # fmt: skip
    finally:
        session.close()
    print(table(["round", "change", "workers counted", "seconds", "failed", "requests in window", "worker CPU % after",
                 "target"], rows))  # fmt: skip
    print(f"\nsession log: {record}")


if __name__ == "__main__":
    main()
