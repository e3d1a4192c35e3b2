"""What durability costs the figures: the sample app's CRUD on the embedded PostgreSQL with its durable defaults
(fsync, synchronous commit) against `--fast-db`, alternated round by round.

    python bench/durability.py [--rounds 3] [--duration 20]

Each round runs `loadtui headless --scenario crud --workers 2 --users 30` twice, durable then fast, and compares
their steady requests/s and p95 (the ratio within a round is what counts on a shared machine).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import table
from loadtui.results.export import log_segments
from loadtui.results.recorder import read_log


def run(path: Path, duration: float, fast: bool) -> tuple[float, float]:
    """(steady req/s, steady p95) of one headless run."""
    argv = [sys.executable, "-m", "loadtui", "headless", "--scenario", "crud", "--workers", "2", "--users", "30"]
    argv += ["--duration", str(duration), "--record", str(path), "--no-auto-confirm"] + (["--fast-db"] if fast else [])
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, timeout=300)
    segs = [s for s in log_segments(read_log(path, slim=True)) if s.steady_seconds and s.rps]
    longest = max(segs, key=lambda s: s.steady_seconds)
    return float(longest.rps or 0.0), float(longest.p95 or 0.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=20.0)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="loadtui-bench-durability-"))
    rows = []
    for i in range(args.rounds):
        durable = run(work / f"durable-{i}.jsonl", args.duration, fast=False)
        fast = run(work / f"fast-{i}.jsonl", args.duration, fast=True)
        rows.append([i + 1, durable[0], fast[0], durable[0] / fast[0], durable[1], fast[1]])
        print(f"round {i + 1} done", flush=True)
    ratios = [r[3] for r in rows]
    print()
    print(table(["round", "durable req/s", "--fast-db req/s", "ratio", "durable p95 ms", "--fast-db p95 ms"], rows))
    print(f"\nmedian ratio of requests/s, durable ÷ --fast-db: {statistics.median(ratios):.3f}")


if __name__ == "__main__":
    main()
