"""A diagnosis people can trust: claims the users' figures show, a stable ranking, faults read as faults, and the
causes the collected signals show (lock waits, another program on the cores)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from loadtui.config import RunConfig
from loadtui.diagnose import FAULT_HOLD_S, THRESHOLDS, Diagnoser, evaluate
from loadtui.measure.collectors import tree
from loadtui.model import ErrorCount, Finding, OutsideProcess, Tick
from tests.helpers import tick

STOCK = RunConfig(workers=2, app="uvicorn a:app --port {port} --workers {workers}")


def by_id(ticks: list[Tick], config: RunConfig | None = None) -> dict[str, Any]:
    return {f.id: f for f in evaluate(ticks, config or RunConfig())}


# -- nodelay: the probe proves the sockets; only the users' latency proves a delay -------------------------------


@pytest.mark.parametrize(
    ("users_p50", "severity"),
    [(1.0, "info"), (7.0, "info"), (THRESHOLDS.nodelay_low_ms - 0.1, "info"), (THRESHOLDS.nodelay_low_ms, "warning")],
)
def test_nodelay_warns_only_when_the_users_latency_carries_the_floor(users_p50: float, severity: str) -> None:
    ticks = [
        tick(float(i), helper=False, worker_cpu=[5.0, 5.0], p50=users_p50, probe_ms=1.0, kept_ms=43.0) for i in range(5)
    ]
    found = by_id(ticks, STOCK)["nodelay-delay"]
    assert found.severity == severity
    if severity == "info":
        assert "were not delayed" in found.title and f"users' p50 is {users_p50:.1f} ms" in found.evidence.replace(
            f"{users_p50:.0f} ms", f"{users_p50:.1f} ms"
        )


# -- lock contention ---------------------------------------------------------------------------------------------


def _locked(
    waits: float, rps: float = 100.0, p50: float = 60.0, active: int = 16, query: str | None = None
) -> list[Tick]:
    out = []
    for i in range(5):
        t = tick(float(i), helper=False, worker_cpu=[8.0], rps=rps, p50=p50, active=active, db_conns=20)
        assert t.db is not None
        db = dataclasses.replace(
            t.db,
            waiting_on_locks=int(waits),
            lock_query=query,
            lock_relation="counters" if query else None,
            lock_blocker="UPDATE counters SET n = n + 1 WHERE id = 1" if query else None,
        )
        out.append(dataclasses.replace(t, db=db))
    return out


@pytest.mark.parametrize(
    ("case", "ticks", "fires"),
    [
        ("15 of 16 busy wait, 150 ms each of a 60 ms p50", _locked(15), True),
        ("4 of 16 wait (a quarter), 40 ms of 60", _locked(4), True),
        ("3 of 16 wait: less than a quarter", _locked(3), False),
        ("waits of 9 ms per request: short", _locked(9, rps=1000.0, p50=20.0), False),
        ("waits a hair under a quarter of the p50", _locked(4, rps=100.0, p50=160.4), False),
        ("no waits", _locked(0), False),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_lock_contention_edges(case: str, ticks: list[Tick], fires: bool) -> None:
    assert ("lock-contention" in by_id(ticks)) is fires, case


def test_lock_contention_names_the_table_and_the_queries_and_db_bound_follows_from_it() -> None:
    found = by_id(_locked(15, query="UPDATE counters SET n = n + 1 WHERE id = 1"))
    lock = found["lock-contention"]
    assert "15.0 of 16.0 busy connections wait on a lock" in lock.evidence
    assert "waiting on counters: `UPDATE counters SET n = n + 1 WHERE id = 1`" in lock.evidence
    assert "held by: `UPDATE counters" in lock.evidence and "SKIP LOCKED" in lock.advice
    assert found["db-bound"].consequence_of == "lock-contention"
    assert [f.id for f in evaluate(_locked(15), RunConfig())].index("lock-contention") < [
        f.id for f in evaluate(_locked(15), RunConfig())
    ].index("db-bound")


# -- another program on the cores ----------------------------------------------------------------------------


def _disturbed(outside: list[OutsideProcess], steal: float | None = None, cores: int = 2) -> list[Tick]:
    return [
        dataclasses.replace(tick(float(i), cpu_count=cores), outside=outside, steal_percent=steal) for i in range(5)
    ]


@pytest.mark.parametrize(
    ("case", "ticks", "fires"),
    [
        ("stress at 95% of a core on 2 cores", _disturbed([OutsideProcess(42, "stress", 95.0)]), True),
        ("exactly a tenth of the cores", _disturbed([OutsideProcess(42, "stress", 20.0)]), True),
        ("a hair under", _disturbed([OutsideProcess(42, "stress", 19.9)]), False),
        ("two small ones that add up", _disturbed([OutsideProcess(1, "a", 10.0), OutsideProcess(2, "b", 10.0)]), True),
        ("the same on 8 cores is little", _disturbed([OutsideProcess(42, "stress", 50.0)], cores=8), False),
        ("steal 5%", _disturbed([], steal=5.0), True),
        ("steal 4.9%", _disturbed([], steal=4.9), False),
        ("nothing outside", _disturbed([]), False),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_measurement_disturbed_edges(case: str, ticks: list[Tick], fires: bool) -> None:
    assert ("measurement-disturbed" in by_id(ticks)) is fires, case


def test_a_disturbed_measurement_says_who_and_how_much() -> None:
    found = by_id(_disturbed([OutsideProcess(42, "stress", 95.0), OutsideProcess(7, "chrome", 20.0)], steal=6.0))
    text = found["measurement-disturbed"].evidence
    assert "stress (pid 42) 95% of a core, chrome (pid 7) 20% of a core; 1.1 of 2 cores in all" in text
    assert "steal time 6%" in text


def test_the_process_tree_is_found_from_the_parents() -> None:
    parents = {1: 0, 10: 1, 11: 10, 12: 11, 20: 1, 21: 20, 30: 2}
    assert tree(parents, {10}) == {10, 11, 12}
    assert tree(parents, {10, 20}) == {10, 11, 12, 20, 21}
    assert tree(parents, {99}) == {99}


# -- the diagnoser: faults, and a ranking that holds -------------------------------------------------------------


def _refused(t: float) -> Tick:
    """A second after the database came back: requests fail on the pools' dead connections, connections are few."""
    err = ErrorCount("GET", "/tasks/{id}", "connection refused; too many clients already", count=5, new=5)
    return tick(t, db_conns=19, errors=[dataclasses.asdict(err)], fail_rps=5.0)


def test_errors_of_a_database_restart_are_not_read_as_a_limit() -> None:
    d = Diagnoser()
    config = RunConfig()
    for i in range(10):
        d.update(tick(float(i)), config)
    d.note("db-lost", 10.2, "database unreachable")
    started: list[str] = []
    for i in range(10, 14):
        started += [f.id for f in d.update(_refused(float(i)), config)[1]]
        assert d.held_by_fault == "database unreachable"
    d.note("db-back", 14.1)
    t = 14.0
    while t < 14.1 + FAULT_HOLD_S:
        started += [f.id for f in d.update(_refused(t), config)[1]]
        t += 1.0
    assert started == []
    # After the hold, the same errors are judged again: the rule itself still holds them to be a limit.
    for _ in range(int(THRESHOLDS.first_verdict_s)):
        started += [f.id for f in d.update(_refused(t), config)[1]]
        t += 1.0
    assert "db-connection-limit" in started


def test_a_restart_of_the_embedded_server_holds_the_diagnosis_too() -> None:
    d = Diagnoser()
    d.note("db-started", 3.0, "restarted", restarted=True)
    assert d.update(_refused(4.0), RunConfig()) == ([], [], []) and d.held_by_fault == "restarted"
    d.note("db-started", 0.5, "first start")  # the first start is no fault
    assert d.update(tick(3.0 + FAULT_HOLD_S), RunConfig())[0] == [] and d.held_by_fault is None


def test_findings_active_before_a_fault_stay_shown_through_it() -> None:
    d = Diagnoser()
    busy: dict[str, Any] = {"worker_cpu": [99.0], "loadgen_cpu": 10.0}
    for i in range(10):
        shown, _, _ = d.update(tick(float(i), **busy), RunConfig())
    assert [f.id for f in shown] == ["too-few-workers"]
    d.note("worker-exited", 10.1, "worker 1000 exited")
    shown, started, ended = d.update(tick(11.0), RunConfig())
    assert [f.id for f in shown] == ["too-few-workers"] and started == [] and ended == []


def _crud_second(t: float, pinned: bool) -> Tick:
    """The sample app's default run: one worker at or just under a full core, its pool's queue behind it."""
    return tick(t, worker_cpu=[99.0 if pinned else 84.0], loadgen_cpu=40.0, pool_waiting=17)


def test_a_consequence_is_never_shown_without_its_cause_and_the_order_holds() -> None:
    d = Diagnoser()
    config = RunConfig()
    pattern = [True, True, False, True, False, False, True, True, True, False, True, False, True, True] * 3
    orders = []
    for i, pinned in enumerate(pattern):
        shown, _, _ = d.update(_crud_second(float(i), pinned), config)
        ids = [f.id for f in shown]
        if "pool-exhausted" in ids:
            assert "too-few-workers" in ids, (i, ids)
            assert shown[ids.index("pool-exhausted")].consequence_of == "too-few-workers", (i, ids)
        orders.append(tuple(ids))
    # Once both are shown they stay in one order (the cause first) for the rest of the run.
    both = [o for o in orders if "pool-exhausted" in o]
    assert both and all(o.index("too-few-workers") < o.index("pool-exhausted") for o in both)


def test_a_long_standing_finding_brings_its_newly_held_cause_along() -> None:
    """pool-exhausted shown on its own; then the worker pins: the cause is shown at once beside it, not after the
    consequence disappears and comes back."""
    d = Diagnoser()
    config = RunConfig()
    events: list[tuple[str, str]] = []
    for i in range(10):
        _, started, ended = d.update(tick(float(i), worker_cpu=[40.0], pool_waiting=17), config)
        events += [("start", f.id) for f in started] + [("end", fid) for fid in ended]
    for i in range(10, 20):
        shown, started, ended = d.update(_crud_second(float(i), True), config)
        events += [("start", f.id) for f in started] + [("end", fid) for fid in ended]
    assert ("end", "pool-exhausted") not in events
    assert [f.id for f in shown] == ["too-few-workers", "pool-exhausted"]
    assert shown[1].consequence_of == "too-few-workers"


def test_a_new_consequence_waits_while_its_cause_was_just_seen(monkeypatch: pytest.MonkeyPatch) -> None:
    """The rules scripted second by second: pool-exhausted holds throughout, the pinned worker only now and then."""
    import loadtui.diagnose.diagnoser as diagnoser

    pool = Finding("pool-exhausted", "warning", "pool", "numbers")
    cores = Finding("too-few-workers", "warning", "cores", "numbers")
    script = {4: [pool, cores], 5: [pool], 6: [pool], 7: [pool], 8: [pool], 9: [pool]}
    now = {"t": 0}
    monkeypatch.setattr(diagnoser, "findings", lambda w: list(script.get(now["t"], [])))
    d = Diagnoser()
    shown_at = {}
    for i in range(10):
        now["t"] = i
        shown, _, _ = d.update(tick(float(i)), RunConfig())
        shown_at[i] = [(f.id, f.consequence_of) for f in shown]
    # Started at 6 (three seconds), while the worker was seen 2 s before: it waits for its cause.
    assert shown_at[6] == []
    # At 7 the worker was last seen 3 s ago: no longer a cause, the pool's queue is shown as a finding of its own.
    assert shown_at[7] == [("pool-exhausted", None)] and shown_at[9] == [("pool-exhausted", None)]


def test_each_rule_is_computed_once_a_second_and_exclusions_are_one_table(monkeypatch: pytest.MonkeyPatch) -> None:
    """The database's figures are read once per window though the pool, database and concurrency rules all ask;
    what rules out what is the EXCLUDED_BY table, not code inside the rules."""
    import loadtui.diagnose.window as window
    from loadtui.diagnose.relations import EXCLUDED_BY, exclude

    made: list[object] = []

    class Counted(window.DbTime):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(window, "DbTime", Counted)
    ticks = [tick(float(i), helper=False, worker_cpu=[8.0], active=3, db_conns=4, probe_ms=1.0) for i in range(5)]
    evaluate(ticks, RunConfig())
    assert len(made) == 1
    limit = Finding("app-concurrency-limit", "warning", "a limit", "numbers")
    for cause in EXCLUDED_BY["app-concurrency-limit"]:
        assert exclude([limit, Finding(cause, "warning", "t", "e")]) == [Finding(cause, "warning", "t", "e")]
    assert exclude([limit]) == [limit]


def test_an_app_that_exited_and_was_restarted_by_apply_is_judged_again() -> None:
    d = Diagnoser()
    d.note("app-exited", 5.0, "the app exited with status 1")
    assert d.update(tick(6.0), RunConfig())[0] == [] and d.held_by_fault is not None
    d.note("applied", 8.0, "configuration applied: restarted as it was")
    shown: list[Any] = []
    for i in range(9, 9 + int(FAULT_HOLD_S) + int(THRESHOLDS.first_verdict_s) + 1):
        shown, _, _ = d.update(tick(float(i), worker_cpu=[99.0], loadgen_cpu=10.0), RunConfig())
    assert [f.id for f in shown] == ["too-few-workers"] and d.held_by_fault is None
