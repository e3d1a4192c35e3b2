"""Foreign apps (tests/zoo: plain FastAPI, no loadtui helper, stock uvicorn): each bottleneck named from outside.

Each app runs as its users run it — `uvicorn module:app --workers N` — with the zoo's plain locustfile and Locust's
usual ramp (10 users a second). What names the cause is what loadtui sees without touching the app: its probe
requests, the OS's process counters and the load figures.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from loadtui.session.core import Session
from tests.integration.test_findings import DEADLINE_S, HEALTHY_S, assert_had_load, run_until, started

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
LOCUSTFILE = str(ROOT / "tests" / "zoo" / "locustfile.py")
THINKING = str(ROOT / "tests" / "zoo" / "locustfile_think.py")
"""Users who wait 50-150 ms between requests, as people browsing do."""


def uvicorn(module: str) -> str:
    """The zoo app as people start it: stock uvicorn, its own worker processes (one process for --workers 1)."""
    return (
        f"{sys.executable} -m uvicorn tests.zoo.{module}:app --app-dir {ROOT} --host {{host}} --port {{port}} "
        "--workers {workers}"
    )


def served(module: str) -> str:
    """The same app behind loadtui's server (uvicorn's supervisor, a socket with TCP_NODELAY); the app is unchanged."""
    return (
        f"{sys.executable} -m loadtui.serve tests.zoo.{module}:app --app-dir {ROOT} --host {{host}} --port {{port}} "
        "--workers {workers}"
    )


def warnings(session: Session) -> list[str]:
    return [
        str(e.data.get("id"))
        for e in session.events
        if e.kind == "finding-started" and e.data.get("severity") in ("warning", "critical")
    ]


# (app, workers, users, the finding that must be named): one live run per finding family, the proof that the
# recorded corpus (tests/corpus, replayed in tests/unit/test_corpus.py) still matches what the stack does. The
# corpus holds the other variants (2 workers, other pool libraries, other servers, calm counterparts).
CASES = [
    ("blocking_io", 1, 20, "event-loop-blocked"),  # a sync SDK call inside async def
    ("semaphore", 2, 20, "app-concurrency-limit"),  # a dependency that admits 2 calls at once: not a blocked loop
    ("sync_threadpool", 1, 80, "threadpool-saturated"),  # plain def endpoints waiting on a slow dependency
    ("small_pool", 2, 20, "pool-exhausted"),  # 2 connections per process, PostgreSQL with room: seen from its views
    ("slow_query", 1, 20, "db-bound"),  # a pool with room, queries of 100 ms
    ("healthy_io", 2, 20, "nodelay-delay"),  # a fine app under stock uvicorn --workers 2: p50 ~60 ms
    ("cpu_bound", 1, 4, "too-few-workers"),  # one stock uvicorn process at 100% of a core (it once read 0%)
    ("hot_row", 1, 20, "lock-contention"),  # every request updates one row: they wait for each other's lock
    ("sqlalchemy_pool", 1, 20, "pool-exhausted"),  # SQLAlchemy's pool of 2 beside 6 idle connections: stuck at 2
]


@pytest.mark.parametrize(("module", "workers", "users", "finding"), CASES, ids=[f"{c[0]}-w{c[1]}" for c in CASES])
def test_a_foreign_app_gets_its_cause_named(
    tmp_path: Path, module: str, workers: int, users: int, finding: str
) -> None:
    session, took = run_until(
        tmp_path,
        finding,
        DEADLINE_S,
        app=uvicorn(module),
        locustfile=LOCUSTFILE,
        workers=workers,
        users=users,
        spawn_rate=max(10, users // 3),  # Locust's usual ramp: two or three load levels, all users within 3 s
        blocker="sdk_call",  # py-spy names the SDK call that blocks the loop (the p key / --confirm)
    )
    assert finding in started(session), f"{finding} not named in {took:.0f} s of load; named: {started(session)}"
    assert took <= DEADLINE_S
    if finding == "app-concurrency-limit":
        assert "event-loop-blocked" not in started(session)  # the probe was answered at once: the loop is free
    if finding == "pool-exhausted":
        assert "db-bound" not in started(session)  # requests wait for a connection, not in the database
    if finding == "db-bound":
        assert "pool-exhausted" not in started(session)  # the pool has a connection for each user
        # Should the queries fill the cores, the busy machine is shown as what they cause, not as the cause.
        now = {f.id: f for f in session.ticks[-1].findings}
        assert "machine-saturated" not in now or now["machine-saturated"].severity == "info", now
    evidence = next(e.data for e in session.events if e.kind == "finding-started" and e.data.get("id") == finding)
    assert evidence.get("signals"), evidence  # each finding says what named it


# The healthy counterparts, calm: each endpoint waits 15–20 ms on a dependency, with room to spare. One process runs
# under stock uvicorn (asyncio sets TCP_NODELAY); several, under a server that sets it on the shared socket — or
# under stock uvicorn with users who think between requests: its sockets lack TCP_NODELAY, but these users' requests
# are not delayed, so nothing may be warned of (the probe's finding is information only).
HEALTHY = [
    ("healthy_io", 1, False),
    ("healthy_io", 2, False),
    ("healthy_db", 1, False),
    ("healthy_db", 2, False),
    ("healthy_sync", 1, False),
    ("healthy_io", 2, True),
]


@pytest.mark.parametrize(
    ("module", "workers", "think"), HEALTHY, ids=[f"{m}-w{w}{'-stock-think' if t else ''}" for m, w, t in HEALTHY]
)
def test_the_healthy_counterpart_raises_no_warning(tmp_path: Path, module: str, workers: int, think: bool) -> None:
    app = uvicorn(module) if workers == 1 or think else served(module)
    locustfile = THINKING if think else LOCUSTFILE
    session, _ = run_until(tmp_path, None, HEALTHY_S, app=app, locustfile=locustfile, workers=workers, users=20)
    assert warnings(session) == [], f"a healthy app got {warnings(session)}"
    assert_had_load(session)
    probes = [t.probe for t in session.ticks if t.probe is not None and t.probe.p50_ms is not None]
    assert len(probes) >= HEALTHY_S - 3 and max(p.p50_ms or 0 for p in probes) < 50, probes[-3:]


# (app, workers, users, the finding, the advised change as the app's settings, what may be named instead)
FIXES = [
    ("semaphore", 1, 20, "app-concurrency-limit", {"LIMIT": "100"}, set()),  # raise the limit
    # Faster queries (2 ms): the app answers at full speed, and one worker's core may become the limit.
    ("slow_query", 1, 20, "db-bound", {"QUERY_S": "0.002"}, {"too-few-workers", "queueing"}),
    # A big enough pool: every request now holds a connection for its whole 20 ms query — the database's time.
    ("small_pool", 1, 20, "pool-exhausted", {"POOL_MAX": "20"}, {"db-bound"}),
]


@pytest.mark.parametrize(
    ("module", "workers", "users", "finding", "fix", "instead"), FIXES, ids=[f"{f[0]}-{f[3]}" for f in FIXES]
)
def test_the_advised_change_ends_the_finding(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    module: str,
    workers: int,
    users: int,
    finding: str,
    fix: dict[str, str],
    instead: set[str],
) -> None:
    """Each finding's advice holds: the same app and load with the advised change no longer gets it, and anything
    named instead is the next true limit (the app's settings reach it through the environment loadtui passes on)."""
    for key, value in fix.items():
        monkeypatch.setenv(key, value)
    session, _ = run_until(
        tmp_path, None, HEALTHY_S, app=uvicorn(module), locustfile=LOCUSTFILE, workers=workers, users=users
    )
    assert finding not in started(session), started(session)
    assert set(warnings(session)) <= instead, warnings(session)
    assert_had_load(session)


LAYOUTS = {
    "uvicorn one process": (uvicorn, 1),
    "uvicorn --workers 2": (uvicorn, 2),
    "loadtui.serve --workers 2": (served, 2),
    "gunicorn, 2 uvicorn workers": (
        lambda module: (
            f"{sys.executable} -m gunicorn tests.zoo.{module}:app --chdir {ROOT} "
            "-k uvicorn.workers.UvicornWorker -w {workers} -b {host}:{port}"
        ),
        2,
    ),
}


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_process_figures_in_every_layout(tmp_path: Path, layout: str) -> None:
    """Each worker of a CPU-bound app is found and reads its real CPU, however the app serves its workers."""
    command, workers = LAYOUTS[layout]
    # 16 users: enough to fill a core even through stock multi-worker uvicorn's 40 ms per request.
    session, _ = run_until(
        tmp_path, None, 8, app=command("cpu_bound"), locustfile=LOCUSTFILE, workers=workers, users=16
    )
    steady = [t for t in session.ticks if t.rps > 0][-5:]
    assert len(steady) == 5 and all(len(t.workers) == workers for t in steady), [t.workers for t in steady]
    # A CPU-bound app under load uses about a core in all (never the 0% of a lost pid); which worker does the work
    # depends on which one accepted the users' kept-alive connections, so the workers are judged together.
    cpu = {
        pid: [w.cpu_percent for t in steady for w in t.workers if w.pid == pid]
        for pid in {w.pid for w in steady[-1].workers}
    }
    means = sorted(sum(v) / len(v) for v in cpu.values())
    assert sum(means) >= 60 and means[-1] >= 40, (layout, cpu)
    assert all(w.rss_bytes > 0 for t in steady for w in t.workers)
    if workers > 1:  # the supervisor is shown apart from its workers
        assert steady[-1].app is not None and steady[-1].app.pid not in {w.pid for w in steady[-1].workers}
