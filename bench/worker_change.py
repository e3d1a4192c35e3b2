"""Live worker changes under load: does the load follow the workers, and does any request fail?

    python bench/worker_change.py [--rounds 3] [--users 20] [--scenario crud]

A real session (embedded PostgreSQL, the sample app, Locust) starts with 2 workers; each round adds a worker and
removes it again by signal (SIGTTIN/SIGTTOU to uvicorn's supervisor), as the dashboard's + and − keys do. For each
change it reports:

- "change s": from the signal until the new count of workers serve (counted, not assumed);
- "balanced s": from the signal until every worker serves between 0.5× and 1.5× of an even share of the requests
  (each worker's own request count, published by loadtui's helper), "—" if not within 10 s;
- "max/min share": the largest and smallest worker's share of the requests in the 5th second after the change, as
  multiples of an even share (1.00 = exactly 1/N);
- "failed" and "retried": requests in the seconds around the change.

Targets (issue 12): balanced within 5 s, shares within 0.5–1.5×, 0 failed requests.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from _common import table
from loadtui.config import RunConfig
from loadtui.model import Tick
from loadtui.session.core import Session
from loadtui.session.rebalance import shares, within

WATCH_TICKS = 10
"""Seconds watched after each change."""


def wait_ticks(session: Session, n: int) -> None:
    target = session.tick_count + n
    deadline = time.monotonic() + n * 3 + 10
    while session.tick_count < target:
        if time.monotonic() > deadline:
            raise SystemExit("the session stopped ticking")
        time.sleep(0.05)


def watch(session: Session, began: float, n: int) -> list[tuple[float, Tick]]:
    """The next `n` ticks, each with its session time relative to `began` (when the change was asked for)."""
    out: list[tuple[float, Tick]] = []
    seen = session.tick_count
    while len(out) < n:
        wait_ticks(session, 1)
        new = session.tick_count - seen
        seen = session.tick_count
        for tick in list(session.ticks)[-new:]:
            out.append((tick.t - began, tick))
    return out[:n]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--scenario", default="crud")
    args = parser.parse_args()
    record = Path(tempfile.mkdtemp(prefix="loadtui-bench-")) / "workers.jsonl"
    config = RunConfig(workers=2, pool_min=1, pool_max=5, users=args.users, spawn_rate=args.users,
                       scenario=args.scenario, record=str(record))  # fmt: skip
    session = Session(config)
    session.open()
    rows: list[list[object]] = []
    try:
        wait_ticks(session, 6)
        for n in range(1, args.rounds + 1):
            for target in (3, 2):
                began = session.elapsed
                session.changes.set_workers(target)
                seconds = float(next(e for e in reversed(session.events) if e.kind == "workers").data["seconds"])
                seen = watch(session, began, WATCH_TICKS)
                balanced_at = None
                for i, (after, _tick) in enumerate(seen):
                    window = [t for _a, t in seen[max(0, i - 1) : i + 1]]
                    if len(window[-1].workers) == target and within(shares(window)):
                        balanced_at = after
                        break
                fifth = [t for a, t in seen if 4.0 <= a < 6.0] or [seen[4][1]]
                split = shares(fifth)
                even = 1 / max(1, len(split))
                failed = round(sum(t.fail_rps for _a, t in seen))
                retried = round(sum(t.retried_rps for _a, t in seen))
                change = f"+1 → {target}" if target == 3 else f"−1 → {target}"
                ok = balanced_at is not None and balanced_at <= 5 and within(split) and failed == 0
                rows.append([n, change, f"{seconds:.2f}", "—" if balanced_at is None else f"{balanced_at:.1f}",
                             f"{max(split.values()) / even:.2f} / {min(split.values()) / even:.2f}", failed, retried,
                             "ok" if ok else "MISSED"])  # fmt: skip
    finally:
        session.close()
    print(table(["round", "change", "change s", "balanced s", "max/min share", "failed", "retried", "target"], rows))
    print(f"\nsession log: {record}")


if __name__ == "__main__":
    main()
