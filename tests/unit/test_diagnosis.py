"""Diagnosis rules on synthetic tick sequences, including the cases that look alike."""

from __future__ import annotations

from typing import Any

import pytest

from loadtui.config import RunConfig
from loadtui.diagnose import Diagnoser, evaluate
from tests.helpers import tick


def seconds(n: int, **kw: Any) -> list[Any]:
    return [tick(float(i), **kw) for i in range(n)]


CASES: list[tuple[str, list[Any], RunConfig, set[str]]] = [
    ("healthy: enough workers, pool and cores", seconds(8), RunConfig(workers=2), set()),
    ("healthy: idle machine", seconds(8, rps=0.0, p50=None, p95=None, users=0), RunConfig(), set()),
    ("one worker pinned at 100% with a core idle",
     seconds(8, worker_cpu=[98.0], loadgen_cpu=30.0), RunConfig(workers=1), {"too-few-workers"}),
    ("one busy worker beside an idle one is imbalance, not too few workers (connections stay on one worker)",
     seconds(8, worker_cpu=[98.0, 5.0], loadgen_cpu=30.0), RunConfig(workers=2), {"worker-imbalance"}),
    ("event loop blocked: lag high, CPU low",
     seconds(8, rps=18.0, p50=1400.0, p95=2500.0, worker_cpu=[4.0], lag=900.0), RunConfig(), {"event-loop-blocked"}),
    ("pool exhausted: requests wait, the database has room",
     seconds(8, rps=180.0, p50=250.0, worker_cpu=[20.0], pool_waiting=40, active=10),
     RunConfig(pool_max=10), {"pool-exhausted"}),
    ("NODELAY floor: ~44 ms at idle CPU with 2 workers",
     seconds(8, rps=450.0, p50=44.0, p95=46.0, worker_cpu=[9.0, 8.0], lag=None, in_flight=None),
     RunConfig(workers=2, app="uvicorn a:app --port {port} --workers {workers}"), {"nodelay-delay"}),
    ("same 44 ms with one worker is not the NODELAY delay",
     seconds(8, rps=450.0, p50=44.0, p95=46.0, worker_cpu=[9.0]), RunConfig(workers=1), set()),
    ("database connection limit: too many clients",
     seconds(8, fail_rps=40.0, db_conns=97, errors=[{"method": "GET", "name": "/tasks/", "count": 200, "new": 40,
                                                    "error": "HTTP 503: sorry, too many clients already"}]),
     RunConfig(db_mode="per-request"), {"db-connection-limit"}),
    ("load generator saturated",
     seconds(8, loadgen_cpu=97.0, worker_cpu=[40.0, 40.0]), RunConfig(workers=2), {"loadgen-saturated"}),
    ("threadpool saturated: 40 threads busy per worker, CPU idle",
     seconds(8, rps=260.0, p50=150.0, worker_cpu=[6.0], threads=42, in_flight=120), RunConfig(),
     {"threadpool-saturated"}),
    ("database-bound: backends active, app idle, no pool queue",
     seconds(8, rps=90.0, p50=200.0, worker_cpu=[5.0], active=18, db_conns=20), RunConfig(), {"db-bound"}),
]  # fmt: skip


@pytest.mark.parametrize(("name", "ticks", "config", "expected"), CASES, ids=[c[0] for c in CASES])
def test_rules(name: str, ticks: list[Any], config: RunConfig, expected: set[str]) -> None:
    found = {f.id for f in evaluate(ticks, config)}
    assert found == expected, name


def test_pool_exhausted_defers_to_the_database_limit() -> None:
    # Pools waiting while PostgreSQL is full: the limit binds, and only db-connection-limit is named.
    ticks = seconds(8, pool_waiting=30, db_conns=97, worker_cpu=[20.0], pool_errors=3)
    found = {f.id for f in evaluate(ticks, RunConfig())}
    assert "db-connection-limit" in found and "pool-exhausted" not in found


def ramp(before: dict[str, Any], after: dict[str, Any], n_before: int = 4, n_after: int = 8) -> list[Any]:
    """Seconds with fewer users, then seconds with more (a Locust ramp, or the w/W keys)."""
    return seconds(n_before, **before) + [tick(float(n_before + i), **after) for i in range(n_after)]


def test_queueing_uses_littles_law() -> None:
    ticks = ramp({"users": 20, "rps": 200.0, "p50": 100.0}, {"users": 80, "rps": 205.0, "p50": 400.0})
    findings = {f.id: f for f in evaluate(ticks, RunConfig(workers=2))}
    assert "queueing" in findings
    assert "≈ 82 requests in flight" in findings["queueing"].evidence  # 205 req/s × 0.40 s
    assert "users 20 → 80" in findings["queueing"].evidence


def test_more_users_served_at_the_same_latency_is_not_queueing() -> None:
    ticks = ramp({"users": 20, "rps": 200.0, "p50": 100.0}, {"users": 80, "rps": 790.0, "p50": 101.0})
    assert not {f.id for f in evaluate(ticks, RunConfig(workers=2))}


NO_HELPER = {"lag": None, "in_flight": None, "threads": 3, "worker_cpu": [3.0], "active": 0, "pool_waiting": 0}


@pytest.mark.parametrize(
    ("name", "before", "after", "expected"),
    [
        ("blocked loop, no helper: 20 req/s = 1 / 50 ms from 1 user on",
         {"users": 1, "rps": 20.0, "p50": 50.0}, {"users": 20, "rps": 20.0, "p50": 1000.0},
         {"event-loop-blocked", "queueing"}),
        ("healthy async app, no helper: throughput follows the users",
         {"users": 1, "rps": 20.0, "p50": 50.0}, {"users": 20, "rps": 400.0, "p50": 50.0}, set()),
        ("at capacity from 20 users on, no helper: a queue, but not provably one request at a time",
         {"users": 20, "rps": 260.0, "p50": 76.0}, {"users": 80, "rps": 266.0, "p50": 300.0}, {"queueing"}),
    ],
)  # fmt: skip
def test_blocked_loop_without_the_helper(name: str, before: dict[str, Any], after: dict[str, Any],
                                         expected: set[str]) -> None:  # fmt: skip
    ticks = ramp({**NO_HELPER, **before}, {**NO_HELPER, **after})
    found = {f.id: f for f in evaluate(ticks, RunConfig(workers=1, app="python my_app.py --port {port}"))}
    assert set(found) == expected, name
    if "event-loop-blocked" in found:
        assert "20.0 req/s per worker ≈ 1 / 50 ms service time" in found["event-loop-blocked"].evidence


def test_busy_database_or_full_threadpool_is_not_a_blocked_loop_without_the_helper() -> None:
    slow = ({"users": 1, "rps": 20.0, "p50": 50.0}, {"users": 20, "rps": 20.0, "p50": 1000.0})
    db_busy = ramp({**NO_HELPER, **slow[0], "active": 5}, {**NO_HELPER, **slow[1], "active": 5})
    threads = ramp({**NO_HELPER, **slow[0], "threads": 41}, {**NO_HELPER, **slow[1], "threads": 41})
    for ticks in (db_busy, threads):
        assert "event-loop-blocked" not in {f.id for f in evaluate(ticks, RunConfig(workers=1))}


def test_findings_start_and_end_with_hysteresis() -> None:
    diag = Diagnoser()
    cfg = RunConfig(workers=1)
    started_at = None
    for i in range(12):
        active, started, _ended = diag.update(tick(float(i), worker_cpu=[99.0]), cfg)
        if started:
            started_at = i
    assert started_at is not None and started_at >= 6  # a 5-second window, then 3 seconds of holding
    ended_at = None
    for i in range(12, 30):
        active, _started, ended = diag.update(tick(float(i), worker_cpu=[30.0]), cfg)
        if ended:
            ended_at = i
            break
    assert ended_at is not None and ended_at - 12 >= 2
    assert not active


def test_every_finding_has_evidence_with_numbers_and_advice() -> None:
    for _name, ticks, config, _expected in CASES:
        for finding in evaluate(ticks, config):
            assert any(ch.isdigit() for ch in finding.evidence), finding
            assert finding.advice and finding.severity in ("info", "warning", "critical")
