"""Does running Locust inside loadtui cost load-generator capacity? loadtui headless vs plain `locust --headless`.

    python bench/loadgen_capacity.py [--users 20] [--seconds 20] [--rounds 3]

Both drive `/ping/` of the same sample app (2 workers, embedded PostgreSQL) with the bundled locustfile's
PingUser, the same users and duration, alternated A/B in one run (the ratio is the median of the rounds' ratios) so machine noise hits both. Requests/s is the
steady state: the first 3 s of load are skipped in both, and one warm-up run of each (caches, CPU frequency) is
not counted. Target (issue 3): loadtui / plain locust ≥ 0.95.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import sample_app, steady_rps, table
from loadtui.config import RunConfig
from loadtui.loadgen import bundled_locustfile

SKIP_S = 3


def run_loadtui(url: str, users: int, seconds: float, work: Path) -> float:
    log = work / f"loadtui-{len(list(work.iterdir()))}.jsonl"
    subprocess.run(
        [sys.executable, "-m", "loadtui", "headless", "--host", url, "--scenario", "ping", "--users", str(users),
         "--spawn-rate", str(users), "--duration", str(seconds), "--record", str(log)],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=seconds + 60,
    )  # fmt: skip
    return steady_rps(log, skip=SKIP_S)


def run_locust(url: str, users: int, seconds: float, work: Path) -> float:
    prefix = work / f"locust-{len(list(work.iterdir()))}"
    subprocess.run(
        [sys.executable, "-m", "locust", "-f", str(bundled_locustfile()), "--headless", "-u", str(users),
         "-r", str(users), "-t", f"{int(seconds)}s", "--host", url, "--csv", str(prefix), "--csv-full-history",
         "--only-summary", "--loglevel", "WARNING", "PingUser"],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=seconds + 60,
    )  # fmt: skip
    with open(f"{prefix}_stats_history.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["Name"] == "Aggregated" and int(r["User Count"]) > 0]
    start = int(rows[0]["Timestamp"]) + SKIP_S
    steady = [r for r in rows if int(r["Timestamp"]) >= start]
    first, last = steady[0], steady[-1]
    seconds_between = int(last["Timestamp"]) - int(first["Timestamp"])
    return (int(last["Total Request Count"]) - int(first["Total Request Count"])) / seconds_between


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="loadtui-capacity-"))
    rows: list[list[object]] = []
    ours: list[float] = []
    theirs: list[float] = []
    with sample_app(RunConfig(workers=2, pool_min=1, pool_max=2)) as app:
        run_loadtui(app.url, args.users, 8, work)
        run_locust(app.url, args.users, 8, work)
        for n in range(1, args.rounds + 1):
            a = run_loadtui(app.url, args.users, args.seconds, work)
            b = run_locust(app.url, args.users, args.seconds, work)
            ours.append(a)
            theirs.append(b)
            rows.append([n, f"{a:,.0f}", f"{b:,.0f}", f"{a / b:.3f}"])
    # Each round's pair ran back to back, so the median of the pairs' ratios cancels slow drift in the machine's load.
    ratio = statistics.median(a / b for a, b in zip(ours, theirs, strict=True))
    rows.append(["median", f"{statistics.median(ours):,.0f}", f"{statistics.median(theirs):,.0f}", f"{ratio:.3f}"])
    print(table(["round", "loadtui headless req/s", "plain locust req/s", "ratio"], rows))
    print(f"\nmedian ratio {ratio:.3f} (target ≥ 0.95): {'ok' if ratio >= 0.95 else 'BELOW TARGET'}")


if __name__ == "__main__":
    main()
