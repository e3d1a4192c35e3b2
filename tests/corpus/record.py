"""Record the corpus on the real stack: `python -m tests.corpus.record [NAME ...]` (all runs by default).

Run it again when the collectors or the log's fields change, on a quiet machine (a run notes another program on the
cores as a disturbed measurement). Each log is written gzipped to tests/corpus/logs/NAME.jsonl.gz.
"""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.corpus.cases import BY_NAME, CASES, ROOT, Case


def record(case: Case) -> float:
    """Run `case` and keep its log; returns the seconds it took."""
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="loadtui-corpus-") as tmp:
        raw = Path(tmp) / "session.jsonl"
        env = os.environ | case.env
        result = subprocess.run(
            case.argv(raw), cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=180
        )
        if result.returncode not in (0, 3) or not raw.exists():
            raise SystemExit(f"{case.name}: exit {result.returncode}: {result.stderr.strip()[-500:]}")
        case.log.parent.mkdir(parents=True, exist_ok=True)
        with raw.open("rb") as src, gzip.open(case.log, "wb", compresslevel=9) as dst:
            shutil.copyfileobj(src, dst)
    return time.monotonic() - began


def main(names: list[str]) -> None:
    unknown = [n for n in names if n not in BY_NAME]
    if unknown:
        raise SystemExit(f"unknown run(s): {', '.join(unknown)}; see tests/corpus/cases.py")
    chosen = [BY_NAME[n] for n in names] if names else list(CASES)
    for i, case in enumerate(chosen, 1):
        took = record(case)
        print(f"[{i}/{len(chosen)}] {case.name}: {took:.0f} s → {case.log.relative_to(ROOT)}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
