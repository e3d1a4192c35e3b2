"""What a sweep costs: the seconds each step spends outside measurement (applying, restarting, settling).

    python bench/sweep_cost.py [--step 5] [--users 20]

One real session (embedded PostgreSQL, the sample app, Locust) runs four small plans one after the other, one per
kind of change a `--vary` makes: users (live), workers (live, then the connections are spread), pool max (a
restart of the app) and scenario (a restart of the load generator). For each step it reports the seconds from
asking for the change until measurement began, and that time as a share of the whole step; the first step of each
plan changes nothing, so it shows the floor (the settle seconds themselves).

Target (issue 16): a live step costs at most the settle seconds plus the ramp; a restart under 10 s.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from _common import table
from loadtui.config import RunConfig
from loadtui.results.verdict import parse_vary
from loadtui.session.core import Session
from loadtui.session.plan import Plan, PlanRunner

PLANS = (
    ("users (live)", "users={users},{double}"),
    ("workers (live)", "workers=1,2"),
    ("pool max (restart)", "pool-max=5,6"),
    ("scenario (load generator restart)", "scenario=crud,ping"),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--step", type=float, default=5.0)
    parser.add_argument("--users", type=int, default=20)
    args = parser.parse_args()
    record = Path(tempfile.mkdtemp(prefix="loadtui-bench-")) / "sweep.jsonl"
    config = RunConfig(workers=1, pool_min=1, pool_max=5, users=args.users, spawn_rate=args.users, record=str(record))
    session = Session(config)
    session.open()
    rows: list[list[object]] = []
    try:
        for kind, vary in PLANS:
            plan = Plan.from_varies([parse_vary(vary.format(users=args.users, double=2 * args.users))])
            runner = PlanRunner(plan, step_s=args.step)
            runner.attach(session)
            deadline = time.monotonic() + 120
            while not runner.finished:
                if time.monotonic() > deadline:
                    raise SystemExit(f"{kind}: the plan did not finish in 120 s")
                runner.poll(session)
                time.sleep(0.1)
            for result, overhead in zip(runner.results, runner.overheads, strict=True):
                whole = overhead + result.segment.steady_seconds
                rows.append([kind, result.label, overhead, result.segment.steady_seconds, overhead / whole])
    finally:
        session.close()
    print(table(["change", "step", "outside measurement s", "measured s", "share outside"], rows))


if __name__ == "__main__":
    main()
