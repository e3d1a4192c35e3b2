"""Sweeps on the real stack: each step measured, the verdict, SLOs as exit statuses, the capacity search."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

TIMEOUT_S = 180


def headless(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """`loadtui headless ARGS` as a user runs it; its exit status, output and the summary line of its log."""
    log = tmp_path / "sweep.jsonl"
    run = subprocess.run(
        [sys.executable, "-m", "loadtui", "headless", "--record", str(log), *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        cwd=tmp_path,
    )
    lines = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    summary: dict[str, Any] = next((r for r in lines if r.get("type") == "summary"), {})
    return run, summary


def test_a_sweep_of_workers_on_a_blocking_app_names_two_workers(tmp_path: Path) -> None:
    run, summary = headless(
        tmp_path, "--scenario", "blocking", "--users", "20", "--vary", "workers=1,2", "--step", "5",
        "--slo", "p95 < 800 ms",
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    assert "Verdict: 2 workers:" in run.stdout
    plan = summary["plan"]
    assert [p["changes"] for p in plan] == [{"workers": 1}, {"workers": 2}]
    assert all(p["segment"]["steady_seconds"] == 5 for p in plan)
    one, two = (p["segment"] for p in plan)
    assert two["rps"] > 1.6 * one["rps"], (one, two)  # the loop is serialised: two workers serve twice as much
    verdict = summary["verdict"]
    assert verdict["config"] == {"workers": 2} and verdict["segment"] == two["index"]
    assert verdict["slos"] == ["p95 < 800 ms"]
    assert {s["index"] for s in summary["segments"]} >= {one["index"], two["index"]}


def test_an_slo_no_configuration_meets_exits_3(tmp_path: Path) -> None:
    run, summary = headless(
        tmp_path, "--scenario", "blocking", "--users", "10", "--vary", "workers=1", "--step", "3", "--slo", "p95 < 5 ms"
    )
    assert run.returncode == 3, run.stderr[-2000:]
    assert "Verdict: none — no configuration met the SLOs; closest: 1 worker, missed p95 < 5 ms" in run.stdout
    assert summary["verdict"]["segment"] is None


def test_a_plain_run_that_misses_an_slo_exits_3_and_one_that_meets_it_exits_0(tmp_path: Path) -> None:
    missed, summary = headless(
        tmp_path, "--scenario", "blocking", "--users", "10", "--duration", "8", "--slo", "p95 < 5 ms",
        "--slo", "fail < 1 %",
    )  # fmt: skip
    assert missed.returncode == 3, missed.stderr[-2000:]
    assert "SLOs: MISSED (exit status 3)" in missed.stdout
    checks = {c["slo"]: c["met"] for c in summary["slo_checks"]}
    assert checks == {"p95 < 5 ms": False, "fail < 1 %": True}
    (tmp_path / "sweep.jsonl").unlink()
    met, _ = headless(tmp_path, "--scenario", "blocking", "--users", "2", "--duration", "8", "--slo", "p95 < 2000 ms")
    assert met.returncode == 0, met.stderr[-2000:]
    assert "SLOs: all met" in met.stdout


def test_a_capacity_search_stops_at_the_slo_breach(tmp_path: Path) -> None:
    # One blocked loop serves 20 req/s: 5 users wait ~250 ms, 10 users ~500 ms, so the knee is 5 users.
    run, summary = headless(
        tmp_path, "--scenario", "blocking", "--vary", "users=auto", "--step", "4", "--slo", "p95 < 380 ms"
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert [p["changes"] for p in summary["plan"]] == [{"users": 5}, {"users": 10}]
    assert summary["verdict"]["knee"] == 5
    assert "knee: 5 users (10 users missed p95 < 380 ms)" in run.stdout


def test_headless_against_a_baseline_it_cannot_match_exits_4(tmp_path: Path) -> None:
    """A real run judged against a baseline that served twice its requests/s: a regression beyond 10%, exit 4, the
    comparison printed; against itself (the same figures), no regression."""
    import json
    import subprocess
    import sys

    first = tmp_path / "first.jsonl"
    argv = [sys.executable, "-m", "loadtui", "headless", "--scenario", "ping", "--users", "5", "--duration", "22",
            "--no-auto-confirm"]  # fmt: skip
    assert subprocess.run([*argv, "--record", str(first)], capture_output=True, timeout=120).returncode == 0
    doubled = tmp_path / "doubled.jsonl"
    lines = []
    for line in first.read_text().splitlines():
        record = json.loads(line)
        if record.get("type") == "tick":
            record["rps"] *= 2
        lines.append(json.dumps(record))
    doubled.write_text("\n".join(lines) + "\n")
    result = subprocess.run(
        [*argv, "--record", str(tmp_path / "second.jsonl"), "--baseline", str(doubled), "--max-regression", "10%"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 4, result.stderr[-2000:]
    assert "second.jsonl against doubled.jsonl" in result.stdout and "REGRESSION beyond 10%" in result.stdout
    same = subprocess.run(
        [sys.executable, "-m", "loadtui", "compare", str(first), str(first)], capture_output=True, text=True, timeout=60
    )
    assert same.returncode == 0 and "no significant difference" in same.stdout, same.stdout
