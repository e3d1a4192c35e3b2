"""Each diagnosis threshold at its edge: the number itself fires, a hair on the other side does not.

The synthetic seconds state every figure a rule reads (loop lag, threads, CPU, connections) instead of relying on
the helper's defaults, so each case changes exactly one number across its threshold.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from loadtui.config import RunConfig
from loadtui.diagnose import (
    DB_LIMIT_MESSAGES,
    THRESHOLDS,
    Diagnoser,
    Window,
    capacity,
    evaluate,
)
from tests.helpers import tick

# A calm worker as a real one looks: no loop lag to speak of, the main thread plus a few helpers.
CALM: dict[str, Any] = {"lag": 0.2, "threads": 4, "in_flight": 1, "worker_cpu": [30.0], "active": 0}
STOCK_APP = "uvicorn a:app --port {port} --workers {workers}"


def seconds(n: int = 5, **kw: Any) -> list[Any]:
    return [tick(float(i), **(CALM | kw)) for i in range(n)]


def ids(ticks: list[Any], config: RunConfig | None = None) -> set[str]:
    return {f.id for f in evaluate(ticks, config or RunConfig())}


EDGES: list[tuple[str, dict[str, Any], RunConfig, str, bool]] = [
    # too-few-workers: every worker at ≥ 85 % of a core, half a core or more idle (or fewer workers than cores)
    ("busy at exactly 85%", {"worker_cpu": [85.0], "loadgen_cpu": 10.0}, RunConfig(), "too-few-workers", True),
    ("busy at 84.9%", {"worker_cpu": [84.9], "loadgen_cpu": 10.0}, RunConfig(), "too-few-workers", False),
    ("2 workers on 2 busy cores: nothing to add", {"worker_cpu": [86.0, 86.0], "loadgen_cpu": 0.0},
     RunConfig(workers=2), "too-few-workers", False),
    ("2 workers, 4 cores, 2 idle", {"worker_cpu": [86.0, 86.0], "loadgen_cpu": 0.0, "cpu_count": 4},
     RunConfig(workers=2), "too-few-workers", True),
    ("2 workers, 3 cores, exactly half a core idle", {"worker_cpu": [86.0, 86.0], "loadgen_cpu": 78.0, "cpu_count": 3},
     RunConfig(workers=3), "too-few-workers", True),
    ("2 workers, 3 cores, less than half a core idle", {"worker_cpu": [86.0, 86.0], "loadgen_cpu": 79.0,
     "cpu_count": 3}, RunConfig(workers=3), "too-few-workers", False),
    ("busy but no traffic", {"worker_cpu": [99.0], "rps": 0.9}, RunConfig(), "too-few-workers", False),
    ("busy at exactly 1 req/s", {"worker_cpu": [99.0], "rps": 1.0, "loadgen_cpu": 10.0}, RunConfig(),
     "too-few-workers", True),
    # worker-imbalance: one ≥ 85 %, one ≤ 20 %
    ("imbalance 85 / 20", {"worker_cpu": [85.0, 20.0]}, RunConfig(workers=2), "worker-imbalance", True),
    ("imbalance 85 / 20.1", {"worker_cpu": [85.0, 20.1]}, RunConfig(workers=2), "worker-imbalance", False),
    ("imbalance 84.9 / 5", {"worker_cpu": [84.9, 5.0]}, RunConfig(workers=2), "worker-imbalance", False),
    ("one worker cannot be imbalanced", {"worker_cpu": [99.0]}, RunConfig(), "worker-imbalance", False),
    ("imbalance without traffic", {"worker_cpu": [99.0, 1.0], "rps": 0.5}, RunConfig(workers=2),
     "worker-imbalance", False),
    # event-loop-blocked: lag ≥ 100 ms and CPU ≤ 50 %
    ("lag exactly 100 ms", {"lag": 100.0, "worker_cpu": [10.0]}, RunConfig(), "event-loop-blocked", True),
    ("lag 99.9 ms", {"lag": 99.9, "worker_cpu": [10.0]}, RunConfig(), "event-loop-blocked", False),
    ("lag with CPU exactly 50%", {"lag": 500.0, "worker_cpu": [50.0]}, RunConfig(), "event-loop-blocked", True),
    ("lag with CPU 50.1% (busy, not blocked)", {"lag": 500.0, "worker_cpu": [50.1]}, RunConfig(),
     "event-loop-blocked", False),
    ("lag without any finished request", {"lag": 500.0, "worker_cpu": [10.0], "p50": None}, RunConfig(),
     "event-loop-blocked", False),
    # threadpool-saturated: every worker with ≥ 40 threads and ≥ 40 in flight, CPU ≤ 50 %
    ("40 threads, 40 in flight", {"threads": 40, "in_flight": 40, "worker_cpu": [10.0]}, RunConfig(),
     "threadpool-saturated", True),
    ("39 threads", {"threads": 39, "in_flight": 40, "worker_cpu": [10.0]}, RunConfig(), "threadpool-saturated", False),
    ("39 in flight", {"threads": 40, "in_flight": 39, "worker_cpu": [10.0]}, RunConfig(), "threadpool-saturated",
     False),
    ("full threadpool at 50.1% CPU", {"threads": 41, "in_flight": 41, "worker_cpu": [50.1]}, RunConfig(),
     "threadpool-saturated", False),
    ("full threadpool on one of two workers", {"threads": 41, "in_flight": 41, "worker_cpu": [10.0, 10.0]},
     RunConfig(workers=2), "threadpool-saturated", True),
    # pool-exhausted: ≥ 1 waiting on average while PostgreSQL has room (connections < allowed - 1)
    ("1 request waiting", {"pool_waiting": 1}, RunConfig(), "pool-exhausted", True),
    ("nobody waiting", {"pool_waiting": 0}, RunConfig(), "pool-exhausted", False),
    ("waiting, PostgreSQL at allowed - 2", {"pool_waiting": 5, "db_conns": 95}, RunConfig(), "pool-exhausted", True),
    ("waiting, PostgreSQL at allowed - 1", {"pool_waiting": 5, "db_conns": 96}, RunConfig(), "pool-exhausted", False),
    # db-connection-limit: at allowed - 1 connections, or refusals; connection errors alone are a fault, not a limit
    ("connections at allowed - 1", {"db_conns": 96}, RunConfig(), "db-connection-limit", True),
    ("connections at allowed - 2", {"db_conns": 95}, RunConfig(), "db-connection-limit", False),
    ("pool connection errors with room (a database restarting)", {"pool_errors": 1}, RunConfig(),
     "db-connection-limit", False),
    ("pool connection errors at the limit", {"pool_errors": 1, "db_conns": 96}, RunConfig(), "db-connection-limit",
     True),
    # db-bound: by Little's law a request spends active / req/s in queries; ≥ half the p50 and ≥ 10 ms, CPU idle
    ("queries half the p50", {"active": 5, "rps": 100.0, "p50": 100.0, "worker_cpu": [10.0]}, RunConfig(),
     "db-bound", True),
    ("queries a hair under half the p50", {"active": 5, "rps": 100.0, "p50": 100.1, "worker_cpu": [10.0]},
     RunConfig(), "db-bound", False),
    ("10 ms of queries per request", {"active": 1, "rps": 100.0, "p50": 20.0, "worker_cpu": [10.0]}, RunConfig(),
     "db-bound", True),
    ("9.9 ms: a fast app that lives in its database", {"active": 1, "rps": 101.0, "p50": 19.8, "worker_cpu": [10.0]},
     RunConfig(), "db-bound", False),
    ("busy database but busy app", {"active": 5, "rps": 100.0, "p50": 60.0, "worker_cpu": [50.1]}, RunConfig(),
     "db-bound", False),
    ("busy database behind a pool queue", {"active": 5, "rps": 100.0, "p50": 60.0, "worker_cpu": [10.0],
     "pool_waiting": 1}, RunConfig(), "db-bound", False),
    ("busy database, almost no traffic", {"active": 4, "rps": 0.5, "p50": 60.0, "worker_cpu": [10.0]},
     RunConfig(), "db-bound", False),
    # loadgen-saturated: ≥ 90 % of each of its cores
    ("load generator at 90%", {"loadgen_cpu": 90.0}, RunConfig(), "loadgen-saturated", True),
    ("load generator at 89.9%", {"loadgen_cpu": 89.9}, RunConfig(), "loadgen-saturated", False),
    ("2 load-generator processes at 180%", {"loadgen_cpu": 180.0, "loadgen_cores": 2}, RunConfig(),
     "loadgen-saturated", True),
    ("2 load-generator processes at 179%", {"loadgen_cpu": 179.0, "loadgen_cores": 2}, RunConfig(),
     "loadgen-saturated", False),
    # nodelay-delay: every p50 within 36–50 ms, ≥ 2 workers, CPU ≤ 50 %
    ("p50 36 ms", {"p50": 36.0, "worker_cpu": [9.0, 9.0]}, RunConfig(workers=2, app=STOCK_APP), "nodelay-delay", True),
    ("p50 35.9 ms", {"p50": 35.9, "worker_cpu": [9.0, 9.0]}, RunConfig(workers=2, app=STOCK_APP), "nodelay-delay",
     False),
    ("p50 50 ms", {"p50": 50.0, "worker_cpu": [9.0, 9.0]}, RunConfig(workers=2, app=STOCK_APP), "nodelay-delay", True),
    ("p50 50.1 ms", {"p50": 50.1, "worker_cpu": [9.0, 9.0]}, RunConfig(workers=2, app=STOCK_APP), "nodelay-delay",
     False),
    ("44 ms at 50.1% CPU", {"p50": 44.0, "worker_cpu": [50.1, 50.1]}, RunConfig(workers=2, app=STOCK_APP),
     "nodelay-delay", False),
    ("44 ms at 0.9 req/s", {"p50": 44.0, "rps": 0.9, "worker_cpu": [9.0, 9.0]}, RunConfig(workers=2, app=STOCK_APP),
     "nodelay-delay", False),
]  # fmt: skip


@pytest.mark.parametrize(("name", "kw", "config", "rule", "fires"), EDGES, ids=[e[0] for e in EDGES])
def test_threshold_edges(name: str, kw: dict[str, Any], config: RunConfig, rule: str, fires: bool) -> None:
    assert (rule in ids(seconds(**kw), config)) is fires, name


@pytest.mark.parametrize("message", DB_LIMIT_MESSAGES)
def test_each_refusal_message_names_the_connection_limit(message: str) -> None:
    error = {"method": "GET", "name": "/x", "count": 9, "new": 3, "error": f"HTTP 500: FATAL: {message.upper()}"}
    found = {f.id: f for f in evaluate(seconds(errors=[error]), RunConfig())}
    assert "db-connection-limit" in found
    assert "15 requests failed with 'too many clients'" in found["db-connection-limit"].evidence  # 3 new × 5 s
    other = {**error, "error": "HTTP 500: connection reset by peer"}
    assert "db-connection-limit" not in ids(seconds(errors=[other]), RunConfig())


def test_a_rule_needs_a_full_window() -> None:
    window = THRESHOLDS.window_s
    pinned: dict[str, Any] = {"worker_cpu": [99.0], "loadgen_cpu": 10.0}
    assert ids(seconds(window - 1, **pinned)) == set()
    assert ids(seconds(window, **pinned)) == {"too-few-workers"}


def test_the_window_is_the_last_seconds_only() -> None:
    # Ten busy seconds, then five calm ones: the window holds only the calm ones.
    ticks = seconds(10, worker_cpu=[99.0], loadgen_cpu=10.0) + [
        tick(float(10 + i), **(CALM | {"worker_cpu": [30.0]})) for i in range(5)
    ]
    assert ids(ticks) == set()


def test_hysteresis_starts_and_ends_at_exact_seconds() -> None:
    diag = Diagnoser()
    cfg = RunConfig()
    events: list[tuple[int, str]] = []
    for i in range(30):
        cpu = 99.0 if i < 12 else 30.0
        _active, started, ended = diag.update(
            tick(float(i), **(CALM | {"worker_cpu": [cpu], "loadgen_cpu": 10.0})), cfg
        )
        events += [(i, f"start {f.id}") for f in started] + [(i, f"end {fid}") for fid in ended]
    # The window is full at second 4; the condition holds at 4, 5, 6 → starts at 6. The window's mean CPU drops
    # below 85 % at second 13 (99×3 + 30×2)/5 = 71; gone at 13, 14, 15 → ends at 15.
    assert events == [(6, "start too-few-workers"), (15, "end too-few-workers")]


def test_a_flicker_shorter_than_the_clear_delay_keeps_the_finding() -> None:
    diag = Diagnoser()
    cfg = RunConfig()
    busy = CALM | {"worker_cpu": [99.0], "loadgen_cpu": 10.0}
    for i in range(10):
        diag.update(tick(float(i), **busy), cfg)
    assert "too-few-workers" in diag.active
    # Two calm seconds are not enough to bring the window's mean below 85 %, nor to end the finding.
    window_calm = [tick(float(10 + i), **(CALM | {"worker_cpu": [0.0], "loadgen_cpu": 10.0})) for i in range(2)]
    ended_any: list[str] = []
    for t in window_calm:
        _a, _s, ended = diag.update(t, cfg)
        ended_any += ended
    assert ended_any == []


def test_reset_forgets_the_seconds_and_the_streaks() -> None:
    diag = Diagnoser()
    cfg = RunConfig()
    busy = CALM | {"worker_cpu": [99.0], "loadgen_cpu": 10.0}
    for i in range(6):
        diag.update(tick(float(i), **busy), cfg)
    diag.reset()
    started_at = None
    for i in range(6, 20):
        _a, started, _e = diag.update(tick(float(i), **busy), cfg)
        if started and started_at is None:
            started_at = i
    assert started_at == 6 + 4 + 2  # a new full window (4 more seconds after the first), then 3 seconds of holding


QUEUE_EDGES: list[tuple[str, dict[str, Any], dict[str, Any], bool]] = [
    ("users ×1.5, p50 ×1.5, flat throughput", {"users": 20, "rps": 100.0, "p50": 100.0},
     {"users": 30, "rps": 100.0, "p50": 150.0}, True),
    ("users ×1.45", {"users": 20, "rps": 100.0, "p50": 100.0}, {"users": 29, "rps": 100.0, "p50": 150.0}, False),
    ("p50 ×1.49", {"users": 20, "rps": 100.0, "p50": 100.0}, {"users": 30, "rps": 100.0, "p50": 149.0}, False),
    ("throughput grew by exactly half the users' growth", {"users": 20, "rps": 100.0, "p50": 100.0},
     {"users": 40, "rps": 150.0, "p50": 200.0}, True),
    ("throughput grew by more than half the users' growth", {"users": 20, "rps": 100.0, "p50": 100.0},
     {"users": 40, "rps": 151.0, "p50": 200.0}, False),
]  # fmt: skip


@pytest.mark.parametrize(("name", "before", "after", "queue"), QUEUE_EDGES, ids=[q[0] for q in QUEUE_EDGES])
def test_queueing_edges(name: str, before: dict[str, Any], after: dict[str, Any], queue: bool) -> None:
    ticks = [tick(float(i), **(CALM | before)) for i in range(4)]
    ticks += [tick(float(4 + i), **(CALM | after)) for i in range(6)]
    assert ("queueing" in ids(ticks, RunConfig(workers=2))) is queue, name


def test_queueing_compares_with_the_fewest_users_and_ignores_a_window_still_ramping() -> None:
    few = [tick(float(i), **(CALM | {"users": u, "rps": 50.0, "p50": 20.0 * u})) for i, u in enumerate((5, 10, 10))]
    now = [tick(float(3 + i), **(CALM | {"users": 40, "rps": 52.0, "p50": 800.0})) for i in range(5)]
    c = capacity(Window(now, RunConfig()), few + now)
    assert c is not None
    assert (c.users_before, c.rps_before, c.p50_before) == (5, 50.0, 100.0)
    assert c.in_flight == pytest.approx(52.0 * 0.8)
    ramping = [tick(3.0, **(CALM | {"users": 30, "rps": 52.0, "p50": 800.0})), *now[1:]]
    assert capacity(Window(ramping, RunConfig()), few + ramping) is None


SERIAL: dict[str, Any] = {"lag": None, "in_flight": None, "threads": 3, "worker_cpu": [3.0, 3.0], "active": 0}


@pytest.mark.parametrize(
    ("users_before", "rps_now", "blocked"),
    [
        (3, 60.0, True),  # 1.5 users per worker at the start; 30 req/s × 50 ms = 1.5 at once per worker
        (4, 60.0, False),  # 2 users per worker at the start: not a measurement of one request at a time
        (3, 61.0, False),  # 30.5 req/s × 50 ms = 1.53 at once per worker: it overlaps requests
    ],
)
def test_serial_fallback_edges(users_before: int, rps_now: float, blocked: bool) -> None:
    before = [tick(float(i), **(SERIAL | {"users": users_before, "rps": 60.0, "p50": 50.0})) for i in range(4)]
    after = [tick(float(4 + i), **(SERIAL | {"users": 40, "rps": rps_now, "p50": 1300.0})) for i in range(6)]
    found = {f.id: f for f in evaluate(before + after, RunConfig(workers=2, app=STOCK_APP))}
    assert ("event-loop-blocked" in found) is blocked
    if blocked:
        assert found["event-loop-blocked"].evidence.startswith("no loop-lag figures from this app")


GOLDEN = Path(__file__).parent / "golden" / "findings.json"


def _golden_cases() -> dict[str, list[Any]]:
    """One sequence per finding (plus the fallback), whose texts are kept in the golden file."""
    pinned: dict[str, Any] = {"worker_cpu": [99.0], "loadgen_cpu": 10.0}
    queue = [tick(float(i), **(CALM | {"users": 20, "rps": 100.0, "p50": 100.0})) for i in range(4)]
    queue += [tick(float(4 + i), **(CALM | {"users": 60, "rps": 102.0, "p50": 300.0})) for i in range(6)]
    serial = [tick(float(i), **(SERIAL | {"users": 2, "rps": 40.0, "p50": 50.0})) for i in range(4)]
    serial += [tick(float(4 + i), **(SERIAL | {"users": 40, "rps": 40.0, "p50": 1000.0})) for i in range(6)]
    error = {"method": "GET", "name": "/x", "count": 9, "new": 3, "error": "sorry, too many clients already"}
    return {
        "too-few-workers": seconds(**pinned),
        "worker-imbalance": seconds(worker_cpu=[97.0, 4.0]),
        "event-loop-blocked": seconds(lag=420.0, worker_cpu=[3.0], rps=19.0, p50=1000.0),
        "threadpool-saturated": seconds(threads=41, in_flight=80, worker_cpu=[6.0], rps=260.0, p50=150.0),
        "pool-exhausted": seconds(pool_waiting=30, rps=180.0, p50=250.0, worker_cpu=[20.0]),
        "db-connection-limit": seconds(db_conns=97, errors=[error], pool_errors=2),
        "db-bound": seconds(active=18, db_conns=20, worker_cpu=[5.0], rps=90.0, p50=200.0, users=20),
        # The same queries while the users mostly think between requests (18 in flight of 50): information only.
        "db-bound (light load)": seconds(active=18, db_conns=20, worker_cpu=[5.0], rps=90.0, p50=200.0, users=50),
        "pool-exhausted (no helper)": _pool_ramp(2, db_conns=2, rps=91.0, p50=220.0),
        "loadgen-saturated": seconds(loadgen_cpu=195.0, loadgen_cores=2),
        "nodelay-delay": seconds(p50=44.0, worker_cpu=[9.0, 8.0], rps=450.0),
        "queueing": queue,
        "event-loop-blocked (no helper)": serial,
        "machine-saturated": _machine(99.0, pool_waiting=30, active=1),
        "event-loop-blocked (probe)": _ramp(700.0),
        "app-concurrency-limit": _ramp(2.0),
        "threadpool-saturated (no helper)": _ramp(2.0, threads=41),
        "nodelay-delay (probe)": seconds(**(FOREIGN | {"probe_ms": 1.5, "kept_ms": 41.0, "rps": 300.0, "p50": 60.0})),
    }


def _texts() -> dict[str, list[dict[str, str]]]:
    out = {}
    for name, ticks in _golden_cases().items():
        config = RunConfig(workers=2, app=STOCK_APP, db_mode="per-request")
        out[name] = [
            {
                "id": f.id,
                "severity": f.severity,
                "title": f.title,
                "evidence": f.evidence,
                "advice": f.advice,
                "signals": ", ".join(f.signals),
            }
            for f in evaluate(ticks, config)
        ]
    return out


def write_golden() -> None:
    """Write the texts of today's rules into the golden file (after reviewing them):
    `python -c "from tests.unit.test_diagnosis_edges import write_golden; write_golden()"`."""
    GOLDEN.parent.mkdir(exist_ok=True)
    GOLDEN.write_text(json.dumps(_texts(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def test_finding_texts_match_the_golden_file() -> None:
    """What the user reads, word for word (a test never writes its own expectation: see :func:`write_golden`)."""
    texts = _texts()
    assert texts == json.loads(GOLDEN.read_text(encoding="utf-8")), "review the texts, then run write_golden()"
    for name, findings in texts.items():
        assert name.split(" ")[0] in {f["id"] for f in findings}, name


def test_blocked_loop_evidence_gives_each_workers_own_throughput() -> None:
    import dataclasses

    def second(i: int) -> Any:
        t = tick(float(i), **(CALM | {"lag": 900.0, "worker_cpu": [3.0, 1.0], "rps": 19.6, "p50": 1000.0}))
        # One worker did all the work (its connections stayed put), the other none; the first skips a report.
        rps = [None if i % 2 else 19.6, 0.0]
        return dataclasses.replace(
            t, workers=[dataclasses.replace(w, requests_per_s=r) for w, r in zip(t.workers, rps, strict=True)]
        )

    found = {f.id: f for f in evaluate([second(i) for i in range(5)], RunConfig(workers=2))}
    evidence = found["event-loop-blocked"].evidence
    assert "(19.6 / 0.0 req/s per worker)" in evidence, evidence
    unhelped = [tick(float(i), **(CALM | {"lag": 900.0, "worker_cpu": [3.0, 1.0], "rps": 19.6})) for i in range(5)]
    unhelped = [dataclasses.replace(t, workers=[dataclasses.replace(w, requests_per_s=None) for w in t.workers])
                for t in unhelped]  # fmt: skip
    assert (
        "(20 req/s over 2 workers)" in {f.id: f for f in evaluate(unhelped, RunConfig())}["event-loop-blocked"].evidence
    )


def test_an_active_finding_carries_the_newest_evidence_and_a_short_gap_does_not_end_it() -> None:
    diag = Diagnoser()
    cfg = RunConfig()

    def busy(i: int, cpu: float) -> Any:
        return tick(float(i), **(CALM | {"worker_cpu": [cpu], "loadgen_cpu": 10.0}))

    for i in range(8):
        diag.update(busy(i, 99.0), cfg)
    assert "busiest worker 99% CPU" in diag.active["too-few-workers"].evidence
    for i in range(8, 14):
        diag.update(busy(i, 90.0), cfg)
    assert "busiest worker 90% CPU" in diag.active["too-few-workers"].evidence  # fresh evidence, same finding
    # Gone for 2 s, back for 1, gone for 2: the gone count starts again, so the finding never ends.
    assert list(diag.active) == ["too-few-workers"]


def test_a_finding_that_flickers_back_before_the_clear_delay_never_ends() -> None:
    # Without the helper's busy-thread figure the threadpool rule reads the last second, so it can flicker:
    # gone 2 s, back 1 s, gone 2 s: the gone count starts again each time and never reaches 3.
    diag = Diagnoser()
    cfg = RunConfig()

    def second(i: int, full: bool) -> Any:
        kw = {"worker_cpu": [6.0], "rps": 260.0, "p50": 150.0, "threads": 45, "in_flight": 80 if full else 10}
        return tick(float(i), **(CALM | kw))

    for i in range(10):
        diag.update(second(i, True), cfg)
    assert "threadpool-saturated" in diag.active
    ended: list[str] = []
    for i, full in enumerate([False, False, True, False, False, True], start=10):
        ended += diag.update(second(i, full), cfg)[2]
    assert ended == [] and "threadpool-saturated" in diag.active
    for i in range(16, 19):
        ended += diag.update(second(i, False), cfg)[2]
    assert ended == ["threadpool-saturated"]  # gone 3 s in a row: it ends


def test_the_diagnoser_keeps_a_bounded_history() -> None:
    diag = Diagnoser(history=60)
    for i in range(100):
        diag.update(tick(float(i), **CALM), RunConfig())
    assert len(diag._ticks) == 60


def test_one_worker_is_named_in_the_singular() -> None:
    import dataclasses

    ticks = [tick(float(i), **(CALM | {"lag": 900.0, "worker_cpu": [3.0], "rps": 19.0})) for i in range(5)]
    ticks = [dataclasses.replace(t, workers=[dataclasses.replace(w, requests_per_s=None) for w in t.workers])
             for t in ticks]  # fmt: skip
    evidence = {f.id: f for f in evaluate(ticks, RunConfig())}["event-loop-blocked"].evidence
    assert "(19 req/s over 1 worker)" in evidence


def _pool_seconds(busy: float, limit: int = 40, **kw: Any) -> list[Any]:
    import dataclasses

    ticks = seconds(**(kw or {"worker_cpu": [6.0], "rps": 260.0, "p50": 600.0, "threads": 45, "in_flight": 150}))
    return [
        dataclasses.replace(
            t, workers=[dataclasses.replace(x, threads_busy=busy, threads_limit=limit) for x in t.workers]
        )
        for t in ticks
    ]


@pytest.mark.parametrize(("busy", "fires"), [(40.0, True), (36.0, True), (35.9, False), (2.0, False)])
def test_threadpool_full_when_the_helper_sees_its_threads_busy(busy: float, fires: bool) -> None:
    assert ("threadpool-saturated" in ids(_pool_seconds(busy))) is fires


def test_idle_threads_left_over_from_sync_endpoints_are_not_a_full_threadpool() -> None:
    # After switching from sync-sleep to async: 45 OS threads linger (anyio keeps idle ones ~10 s) and 150
    # requests are in flight on the event loop, but no thread is busy.
    assert "threadpool-saturated" not in ids(_pool_seconds(0.0))


def test_threadpool_evidence_splits_the_latency_into_holding_and_waiting() -> None:
    found = {f.id: f for f in evaluate(_pool_seconds(40.0), RunConfig())}
    evidence = found["threadpool-saturated"].evidence
    # 40 threads / 260 req/s = 154 ms per request in a thread; p50 600 ms, so ~446 ms waiting.
    assert "40 of 40 threadpool threads busy" in evidence
    assert "260 req/s = 40 threads / 154 ms per request in a thread" in evidence
    assert "about 446 ms is waiting for a thread" in evidence


def _machine(total: float | None, **kw: Any) -> list[Any]:
    import dataclasses

    base: dict[str, Any] = {"worker_cpu": [80.0, 60.0], "loadgen_cpu": 45.0, "rps": 1500.0} | kw
    return [dataclasses.replace(t, machine_cpu_percent=total) for t in seconds(**base)]


@pytest.mark.parametrize(("total", "fires"), [(95.0, True), (100.0, True), (94.9, False), (None, False)])
def test_machine_saturated_edges(total: float | None, fires: bool) -> None:
    assert ("machine-saturated" in ids(_machine(total), RunConfig(workers=2))) is fires


def _crowded(mypy_cpu: float, worker_cpu: list[float], loadgen_cpu: float) -> list[Any]:
    """A full machine (98% of 2 cores) where a program outside the run uses `mypy_cpu`% of a core."""
    from loadtui.model import OutsideProcess

    ticks = _machine(98.0, worker_cpu=worker_cpu, loadgen_cpu=loadgen_cpu, rps=300.0)
    return [dataclasses.replace(t, outside=[OutsideProcess(4242, "mypy", mypy_cpu)]) for t in ticks]


def test_a_full_machine_says_what_other_programs_take_and_blames_them_when_they_take_most() -> None:
    # 1.96 cores busy: the workers 0.3, the load generator 0.2, mypy 1.2: the rest (PostgreSQL, loadtui) 0.26.
    found = {f.id: f for f in evaluate(_crowded(120.0, [15.0, 15.0], 20.0), RunConfig(workers=2))}
    full = found["machine-saturated"]
    assert full.title == "The machine is out of CPU: other programs take most of its cores"
    assert full.evidence == (
        "all 2 cores 98% busy: app workers 0.3 cores, load generator 0.2, PostgreSQL and loadtui 0.3, other programs "
        "1.2, at 300 req/s"
    )
    assert "mypy (pid 4242) 120% of a core" in found["measurement-disturbed"].evidence
    # The run's own processes use most of it: the usual words, with the other programs' share apart.
    own = {f.id: f for f in evaluate(_crowded(40.0, [60.0, 60.0], 20.0), RunConfig(workers=2))}["machine-saturated"]
    assert own.title == "The machine is out of CPU: app, load generator and database share its cores"
    assert "app workers 1.2 cores, load generator 0.2, PostgreSQL and loadtui 0.2, other programs 0.4" in own.evidence
    # A share below 0.05 of a core is not named apart.
    quiet = {f.id: f for f in evaluate(_crowded(4.0, [80.0, 80.0], 20.0), RunConfig(workers=2))}["machine-saturated"]
    assert "the rest (PostgreSQL, other processes) 0.2" in quiet.evidence


def test_queries_that_fill_the_cores_are_the_cause_not_a_consequence() -> None:
    # Heavy SQL: the workers idle (5% each), Locust 10%, yet the machine is full — PostgreSQL is "the rest".
    ticks = _machine(99.0, worker_cpu=[5.0, 5.0], loadgen_cpu=10.0, rps=80.0, p50=230.0, active=14, db_conns=18)
    found = {f.id: f for f in evaluate(ticks, RunConfig(workers=2))}
    assert "consequence" not in found["db-bound"].advice
    assert found["machine-saturated"].severity == "info" and found["machine-saturated"].consequence_of == "db-bound"
    assert found["db-bound"].consequence_of is None
    # The same busy machine with the app's workers using it: the slow queries are then a consequence.
    busy_app = _machine(
        99.0, worker_cpu=[45.0, 45.0], loadgen_cpu=60.0, rps=80.0, p50=230.0, active=14, db_conns=18, users=20
    )
    found = {f.id: f for f in evaluate(busy_app, RunConfig(workers=2))}
    assert found["db-bound"].consequence_of == "machine-saturated" and found["machine-saturated"].severity == "warning"


def test_machine_saturated_says_who_uses_the_cores_and_comes_first() -> None:
    found = evaluate(_machine(98.0, pool_waiting=30, active=1), RunConfig(workers=2))
    assert [f.id for f in found][:2] == ["machine-saturated", "pool-exhausted"]
    evidence = found[0].evidence
    # 98% of 2 cores = 1.96 cores: workers 1.4, load generator 0.45, the rest 0.11.
    assert "all 2 cores 98% busy: app workers 1.4 cores, load generator 0.5, the rest (PostgreSQL" in evidence
    assert found[1].advice.startswith("A consequence of the machine being out of CPU (machine-saturated)")
    alone = evaluate(_machine(50.0, pool_waiting=30, active=1), RunConfig(workers=2))
    assert not alone[0].advice.startswith("A consequence")


def test_active_findings_are_ranked_root_cause_first() -> None:
    diag = Diagnoser()
    cfg = RunConfig(workers=2)
    active: list[Any] = []
    for i, t in enumerate(_machine(99.0, pool_waiting=30, active=1)):
        active = diag.update(dataclasses_replace_t(t, float(i)), cfg)[0]
    for i, t in enumerate(_machine(99.0, pool_waiting=30, active=1)):
        active = diag.update(dataclasses_replace_t(t, float(5 + i)), cfg)[0]
    assert [f.id for f in active][:2] == ["machine-saturated", "pool-exhausted"]


def dataclasses_replace_t(t: Any, at: float) -> Any:
    import dataclasses

    return dataclasses.replace(t, t=at)


def test_a_root_cause_found_later_is_still_shown_first() -> None:
    diag = Diagnoser()
    cfg = RunConfig(workers=2)
    calm_machine = _machine(50.0, pool_waiting=30, active=1)
    busy_machine = _machine(99.0, pool_waiting=30, active=1)
    for i, t in enumerate(calm_machine + calm_machine):
        diag.update(dataclasses_replace_t(t, float(i)), cfg)
    assert list(diag.active) == ["pool-exhausted"]
    active: list[Any] = []
    for i, t in enumerate(busy_machine + busy_machine):
        active = diag.update(dataclasses_replace_t(t, float(10 + i)), cfg)[0]
    assert [f.id for f in active][:2] == ["machine-saturated", "pool-exhausted"]


def test_a_busy_machine_alone_is_information_not_a_warning() -> None:
    found = {f.id: f for f in evaluate(_machine(99.0), RunConfig(workers=2))}
    assert found["machine-saturated"].severity == "info"
    with_problem = {f.id: f for f in evaluate(_machine(99.0, pool_waiting=30, active=1), RunConfig(workers=2))}
    assert with_problem["machine-saturated"].severity == "warning"


# -- apps without the helper: the probe tells a blocked loop from waiting inside the app --------------------------

FOREIGN: dict[str, Any] = {"helper": False, "db": False, "threads": 1, "worker_cpu": [5.0]}


def _ramp(probe_ms: float | None, network_ms: float = 0.0, **kw: Any) -> list[Any]:
    """10 users, then 20: throughput flat, latency doubled (a queue), as the zoo apps show it.

    Before the load, a second of probes alone: the network's share of a probe (`network_ms`; 0 reads the edges as
    written, a millisecond on loopback, tens of ms for a --host far away).
    """
    base = FOREIGN | {"probe_ms": probe_ms} | kw
    idle = [tick(-1.0, **(base | {"users": 0, "rps": 0.0, "p50": None, "probe_ms": network_ms}))]
    before = [tick(float(i), **(base | {"users": 10, "rps": 60.0, "p50": 160.0})) for i in range(3)]
    return idle + before + [tick(float(3 + i), **(base | {"users": 20, "rps": 62.0, "p50": 320.0})) for i in range(6)]


@pytest.mark.parametrize(
    ("case", "ticks", "named", "not_named"),
    [
        ("probe waits with the users: blocked loop", _ramp(700.0), "event-loop-blocked", "app-concurrency-limit"),
        ("probe answered at once: a limit inside the app", _ramp(2.0), "app-concurrency-limit", "event-loop-blocked"),
        ("probe at half the users' p50: still in line", _ramp(160.0), "event-loop-blocked", "app-concurrency-limit"),
        ("probe at 49 ms: below the blocked floor", _ramp(49.0), None, "event-loop-blocked"),
        ("probe at a quarter of p50 (80 ms): in line", _ramp(80.0), "event-loop-blocked", "app-concurrency-limit"),
        ("probe at 79 ms: under a quarter, neither", _ramp(79.0), None, "event-loop-blocked"),
        ("probe at 10% of p50: the loop is free", _ramp(32.0), "app-concurrency-limit", "event-loop-blocked"),
        ("probe at 11% of p50: neither", _ramp(35.2), None, "app-concurrency-limit"),
        ("no probe (--no-probe): no guess", _ramp(None), "queueing", "app-concurrency-limit"),
        ("busy CPU, slow probe: CPU-bound, not blocked", _ramp(700.0, worker_cpu=[99.0]), None, "event-loop-blocked"),
        (
            "CPU work in def endpoints: 41 threads share one core (the GIL): too few workers, not a full threadpool",
            _ramp(2.0, threads=41, worker_cpu=[99.0]),
            "too-few-workers",
            "threadpool-saturated",
        ),
        (
            "the same 41 threads waiting at 10% CPU: a full threadpool, not too few workers",
            _ramp(2.0, threads=41, worker_cpu=[10.0]),
            "threadpool-saturated",
            "too-few-workers",
        ),
        (
            "CPU work in async def: 2 threads, one core",
            _ramp(700.0, threads=2, worker_cpu=[99.0]),
            "too-few-workers",
            "event-loop-blocked",
        ),
        (
            "all 40 threads up, loop free: threadpool",
            _ramp(2.0, threads=41),
            "threadpool-saturated",
            "app-concurrency-limit",
        ),
        (
            "every app connection busy: the app's pool, not another limit",
            _ramp(2.0, db=True, active=8, db_conns=8),
            "pool-exhausted",
            "app-concurrency-limit",
        ),
        (
            "queries hold most of the p50: the database, not the app's limit",
            _ramp(2.0, db=True, active=16, db_conns=20),
            "db-bound",
            "app-concurrency-limit",
        ),
        (
            "a sync driver in async def: its one connection busy, the loop blocked — not a small pool",
            _ramp(700.0, db=True, active=1, db_conns=1),
            "event-loop-blocked",
            "pool-exhausted",
        ),
        (
            "a small pool is not slow queries: 2 connections held 32 ms of 320",
            _ramp(2.0, db=True, active=2, db_conns=2),
            "pool-exhausted",
            "db-bound",
        ),
        (
            "slow queries are not a small pool: 20 connections, 18 running, held 290 ms of 320",
            _ramp(2.0, db=True, active=18, db_conns=20),
            "db-bound",
            "pool-exhausted",
        ),
        (
            "a slow dependency, users steady: nothing queues",
            [tick(float(i), **(FOREIGN | {"probe_ms": 2.0, "users": 20, "rps": 62.0, "p50": 320.0})) for i in range(9)],
            None,
            "app-concurrency-limit",
        ),
    ],
)
def test_probe_rules_and_their_look_alikes(case: str, ticks: list[Any], named: str | None, not_named: str) -> None:
    found = ids(ticks, RunConfig(workers=1, app=STOCK_APP))
    if named is not None:
        assert named in found, (case, found)
    assert not_named not in found, (case, found)


@pytest.mark.parametrize(
    ("network_ms", "probe_ms", "blocked"),
    [
        (0.0, 100.0, True),
        (60.0, 140.0, True),  # 80 ms beyond the network's share (50 ms and a quarter of the p50): in the loop's line
        (60.0, 109.0, False),  # a --host far away: its round trips are not the app's wait
        (60.0, 62.0, False),
    ],
)
def test_the_probe_is_judged_beyond_the_networks_share(network_ms: float, probe_ms: float, blocked: bool) -> None:
    found = ids(_ramp(probe_ms, network_ms=network_ms), RunConfig(workers=1, app=STOCK_APP))
    assert ("event-loop-blocked" in found) is blocked, found


def test_the_diagnoser_keeps_the_fastest_probe_of_the_whole_session() -> None:
    # Long after the calm first seconds have left the diagnoser's history, a blocked loop is still judged against them.
    diag = Diagnoser(history=10)
    ticks = _ramp(700.0, network_ms=1.0)
    config = RunConfig(workers=1, app=STOCK_APP)
    for t in ticks[:1] + [dataclasses.replace(ticks[-1], t=float(i)) for i in range(30)]:
        active, _, _ = diag.update(t, config)
    assert "event-loop-blocked" in {f.id for f in active}


def test_the_probe_finding_says_which_signal_named_it() -> None:
    [blocked] = [f for f in evaluate(_ramp(700.0), RunConfig(workers=1, app=STOCK_APP)) if f.id == "event-loop-blocked"]
    assert blocked.signals == ["probe", "process"] and "probe requests" in blocked.evidence
    assert all(f.signals for f in evaluate(_ramp(2.0), RunConfig(workers=1, app=STOCK_APP)))


@pytest.mark.parametrize(
    ("fresh", "kept", "users_p50", "fires"),
    [
        (1.5, 41.0, 60.0, True),  # a 15 ms endpoint under stock uvicorn --workers 2: p50 off the old 36–50 ms band
        (1.5, 41.0, 44.0, True),
        (1.5, 36.0, 300.0, True),  # whatever the endpoints cost, the gap is the server's
        (1.5, 35.9, 44.0, False),  # no floor on the kept-alive connection: the old p50 band alone does not decide
        (1.5, 50.1, 44.0, False),
        (10.3, 41.0, 44.0, False),  # the fresh probe waits too: a slow loop, not Nagle
        (700.0, 700.0, 320.0, False),  # a blocked loop delays both
    ],
)
def test_nodelay_from_the_kept_alive_probe(fresh: float, kept: float, users_p50: float, fires: bool) -> None:
    ticks = [
        tick(float(i), **(FOREIGN | {"probe_ms": fresh, "kept_ms": kept, "users": 4, "rps": 90.0, "p50": users_p50}))
        for i in range(6)
    ]
    assert ("nodelay-delay" in ids(ticks, RunConfig(workers=2, app=STOCK_APP))) is fires


def _pool_ramp(
    busy: tuple[int, ...] | int, db_conns: int = 4, p50: float = 200.0, rps: float = 100.0, **kw: Any
) -> list[Any]:
    """A helper-less app: 2 users (the first step: 90 req/s at 22 ms), then 20 with `busy` of its `db_conns`
    connections busy each second (one figure, or one per second of the window)."""
    base = CALM | {"helper": False, "worker_cpu": [10.0], "db_conns": db_conns} | kw
    first = [tick(float(i), **(base | {"users": 2, "rps": 90.0, "p50": 22.0, "active": 1})) for i in range(2)]
    each = (busy,) * 7 if isinstance(busy, int) else (busy[0],) * 2 + busy
    return first + [tick(float(2 + i), **(base | {"users": 20, "rps": rps, "p50": p50, "active": n}))
                    for i, n in enumerate(each)]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "ticks", "fires"),
    [
        ("4 of 4 connections busy, held 40 of 200 ms", _pool_ramp(4), True),
        ("busy on average half the time, all at once at times", _pool_ramp((4, 0, 4, 0, 2)), True),
        ("busy 1.8 of 4 on average", _pool_ramp((4, 0, 4, 0, 1)), False),
        # A pool loadtui cannot read (SQLAlchemy's) beside a connection the app keeps for something else: the busy
        # ones stand at 3 every second, never 4, while the users grew tenfold and their latency with them.
        ("3 of 4 in every second, never more: a cap of 3", _pool_ramp(3), True),
        ("3 of 4 in 3 of 5 seconds: not pinned", _pool_ramp((3, 2, 3, 1, 3)), False),
        ("3 of 4 in 4 of 5 seconds: pinned", _pool_ramp((3, 2, 3, 3, 3)), True),
        ("held exactly half the p50: the database's time", _pool_ramp(4, p50=80.0), False),
        ("held a hair under half the p50", _pool_ramp(4, p50=80.1), True),
        ("every connection busy, PostgreSQL at its limit", _pool_ramp(96, db_conns=96, p50=8000.0), False),
        ("every connection busy, busy app", _pool_ramp(4, worker_cpu=[50.1]), False),
        # 2 connections often all busy, but throughput grew with the users (900 req/s at the first step's 22 ms):
        # requests spend their time in an awaited call, not waiting for a connection.
        ("a small pool with room to spare: no queue", _pool_ramp(2, db_conns=2, rps=900.0, p50=22.0), False),
        # The kernel gave one of two workers nearly every connection: its pool (2 of the 4) is full, the other idles.
        ("one of two workers carries the load", _pool_ramp(2, worker_cpu=[9.0, 1.0]), True),
        (
            "both carry it, 2 of 4 busy in turn: half the pools",
            _pool_ramp((2, 1, 2, 1, 2), worker_cpu=[9.0, 5.0]),
            False,
        ),
        # Stock uvicorn --workers 2: the first step's 64 ms holds Nagle's 40 ms, so throughput grew 6× for 10× the
        # users; the latency still grew (64 → 110 ms) while every connection was busy.
        (
            "behind a fixed delay",
            [
                dataclasses.replace(t, latency=dataclasses.replace(t.latency, p50=64.0), rps=31.0)
                if t.users == 2
                else t
                for t in _pool_ramp(4, rps=183.0, p50=110.0)
            ],
            True,
        ),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_pool_exhausted_without_the_helper(case: str, ticks: list[Any], fires: bool) -> None:
    # ≥ 50 % of the app's connections busy on average and all at once at times, each request holding one for less
    # than half its p50, a queue since the first step, room in PostgreSQL, the workers idle.
    assert ("pool-exhausted" in ids(ticks)) is fires, case


@pytest.mark.parametrize(("threads", "fires"), [((42, 37), True), ((39, 37), False)])
def test_a_full_threadpool_in_one_of_two_workers_without_the_helper(threads: tuple[int, int], fires: bool) -> None:
    # The kernel spread the users' connections unevenly: one worker reached anyio's 40 threads, the other did not.
    import dataclasses

    ticks = _ramp(2.0, worker_cpu=[10.0, 10.0])
    ticks = [
        dataclasses.replace(
            t, workers=[dataclasses.replace(x, threads=n) for x, n in zip(t.workers, threads, strict=True)]
        )
        for t in ticks
    ]
    assert ("threadpool-saturated" in ids(ticks, RunConfig(workers=2))) is fires


def test_the_first_steps_seconds_outlive_the_diagnosers_history() -> None:
    # A limit inside the app is judged against the first step (2 users) however long the session runs.
    diag = Diagnoser(history=10)
    config = RunConfig(workers=1, app=STOCK_APP)
    ticks = _ramp(2.0)
    for t in ticks[:4] + [dataclasses.replace(ticks[-1], t=float(4 + i)) for i in range(70)]:
        active, _, _ = diag.update(t, config)
    assert "app-concurrency-limit" in {f.id for f in active}
    diag.reset()  # a restart: the old seconds prove nothing
    for i in range(12):
        active, _, _ = diag.update(dataclasses.replace(ticks[-1], t=float(100 + i)), config)
    assert "app-concurrency-limit" not in {f.id for f in active}


def test_a_pool_queue_behind_a_pinned_worker_is_its_consequence() -> None:
    # The sample app's default run: one worker at 100% of its core, requests waiting for its pool's connections.
    # Raising the pool max changed nothing there; adding a worker did. The pinned worker is listed first.
    ticks = seconds(worker_cpu=[100.0], loadgen_cpu=37.0, pool_waiting=17, rps=2600.0, p50=17.0)
    found = evaluate(ticks, RunConfig())
    assert [f.id for f in found] == ["too-few-workers", "pool-exhausted"]
    assert found[1].advice.startswith("A consequence of the workers' full cores (too-few-workers): add workers first.")
    diag = Diagnoser()
    for t in ticks + [dataclasses.replace(t, t=5.0 + t.t) for t in ticks]:
        active, _, _ = diag.update(t, RunConfig())
    assert [f.id for f in active] == ["too-few-workers", "pool-exhausted"]
    # With the worker's core to spare, the same queue is the pool's own.
    calm = evaluate(seconds(worker_cpu=[40.0], pool_waiting=17, rps=2600.0, p50=17.0), RunConfig())
    assert [f.id for f in calm] == ["pool-exhausted"] and not calm[0].advice.startswith("A consequence")


@pytest.mark.parametrize(("kept_ms", "queue"), [(43.0, True), (None, False)])
def test_a_fixed_delay_outside_the_app_is_left_out_of_the_latencys_growth(kept_ms: float | None, queue: bool) -> None:
    # Stock uvicorn --workers 2, a full pool: p50 64 ms at the first step (22 ms of query, ~40 ms of Nagle), 92 ms at
    # 20 users. Raw growth 1.44×; without the delay the probe measures on a kept-alive connection, 1.9×.
    first = [tick(float(i), **(CALM | {"users": 2, "rps": 31.0, "p50": 64.0, "probe_ms": 1.5, "kept_ms": kept_ms}))
             for i in range(2)]  # fmt: skip
    now = [tick(float(2 + i), **(CALM | {"users": 20, "rps": 190.0, "p50": 92.0, "probe_ms": 1.5,
                                         "kept_ms": kept_ms})) for i in range(5)]  # fmt: skip
    window = Window(now, RunConfig(workers=2))
    assert (capacity(window, first + now, latency_only=True) is not None) is queue


def test_the_baseline_keeps_five_seconds_at_the_fewest_users_with_figures() -> None:
    from loadtui.diagnose.diagnoser import BASELINE_S, Diagnoser

    d = Diagnoser()
    for skipped in (tick(0, users=0), tick(0, users=1, p50=None), tick(0, users=1, rps=0.9)):
        d._keep_baseline(skipped)
    assert d._baseline == []
    d._keep_baseline(tick(1, users=1, rps=1.0))  # one user and a request a second: a baseline
    assert [t.users for t in d._baseline] == [1]
    d._keep_baseline(tick(2, users=10))
    assert [t.t for t in d._baseline] == [1]  # more users: not the baseline
    for s in range(3, 3 + BASELINE_S):
        d._keep_baseline(tick(s, users=1))
    assert [t.t for t in d._baseline] == [1, 3, 4, 5, 6]  # at most five
    d2 = Diagnoser()
    d2._keep_baseline(tick(1, users=4))
    d2._keep_baseline(tick(2, users=2))
    assert [t.t for t in d2._baseline] == [2]  # fewer users start it afresh
