"""The corpus's runs and their labels.

Each run is an app (tests/zoo, none of which imports loadtui, or the sample app) served one of the ways people serve
one, under load with or without think time. Its labels come from how the app is built, not from what the diagnosis
said: `expect`, the findings that must be named; `allow`, true but secondary ones (a consequence, the busy machine of
a 2-core box) that may be; anything else named as a warning is a false claim. A calm run expects and allows nothing.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
LOGS = Path(__file__).resolve().parent / "logs"
SECONDS = 20
"""Seconds of load per run: the first step, the ramp, and time for any finding to start (about 10 s)."""


@dataclass(frozen=True)
class Case:
    """One recorded run."""

    name: str
    app: str | None
    """A zoo module (tests/zoo/NAME.py), or None for the sample app."""
    server: str = "uvicorn"
    """How the app is served: stock `uvicorn`, `serve` (loadtui.serve), `gunicorn` with uvicorn workers."""
    workers: int = 1
    users: int = 20
    think: bool = False
    """Users wait 50-150 ms between requests (tests/zoo/locustfile_think.py), as browsing people do."""
    env: dict[str, str] = field(default_factory=dict)
    """The app's settings (the advised fix, a pool size...)."""
    options: tuple[str, ...] = ()
    """More loadtui options (the sample app's scenario...)."""
    expect: frozenset[str] = frozenset()
    allow: frozenset[str] = frozenset()

    @property
    def calm(self) -> bool:
        """A healthy app with room to spare: nothing to name."""
        return not self.expect and not self.permitted

    @property
    def permitted(self) -> frozenset[str]:
        """What may be named beside the expected: `allow`, and the missing TCP_NODELAY of stock multi-worker
        uvicorn, which delays users who send without pause (tests/zoo/healthy_io under it: p50 60 ms for 15 ms)."""
        stock_nodelay = self.server == "uvicorn" and self.workers > 1 and not self.think
        return self.allow | ({"nodelay-delay"} if stock_nodelay else frozenset())

    @property
    def log(self) -> Path:
        return LOGS / f"{self.name}.jsonl.gz"

    def argv(self, record: Path) -> list[str]:
        """The `loadtui headless` command that records this run."""
        args = [sys.executable, "-m", "loadtui", "headless", "--duration", str(SECONDS), "--record", str(record)]
        args += ["--workers", str(self.workers), "--users", str(self.users), "--no-auto-confirm"]
        args += ["--spawn-rate", str(max(10, self.users // 3))]
        if self.app is not None:
            args += ["--app", self.command(), "--locustfile", str(ROOT / "tests" / "zoo" / self.locustfile)]
        return args + list(self.options)

    @property
    def locustfile(self) -> str:
        return "locustfile_think.py" if self.think else "locustfile.py"

    def command(self) -> str:
        """The app's own command line, as its users start it."""
        target = f"tests.zoo.{self.app}:app"
        if self.server == "gunicorn":
            return (
                f"{sys.executable} -m gunicorn {target} --chdir {ROOT} -k uvicorn.workers.UvicornWorker "
                "-w {workers} -b {host}:{port}"
            )
        module = "loadtui.serve" if self.server == "serve" else "uvicorn"
        return f"{sys.executable} -m {module} {target} --app-dir {ROOT} --host {{host}} --port {{port}} --workers {{workers}}"


def _case(
    name: str, app: str | None, expect: str | set[str] | None = None, allow: set[str] | None = None, **kw: Any
) -> Case:
    wanted = frozenset({expect} if isinstance(expect, str) else expect or ())
    return Case(name=name, app=app, expect=wanted, allow=frozenset(allow or ()), **kw)


CPU_OF_A_SMALL_BOX = {"machine-saturated", "queueing"}
"""On 2 cores a load that fills one can fill the machine; a queue follows from every limit."""

CASES: tuple[Case, ...] = (
    # The event loop held by a blocking call inside async def.
    _case("blocking-io-w1", "blocking_io", "event-loop-blocked", {"queueing"}),
    _case("blocking-io-w2", "blocking_io", "event-loop-blocked", {"queueing", "worker-imbalance"}, workers=2),
    _case("sample-blocking-w1", None, "event-loop-blocked", {"queueing"}, options=("--scenario", "blocking")),
    # Something inside the app admits a few requests at once: a semaphore, an HTTP client's connection limit.
    _case("semaphore-w1", "semaphore", "app-concurrency-limit", {"queueing"}),
    _case("semaphore-w2", "semaphore", "app-concurrency-limit", {"queueing"}, workers=2),
    _case("http-client-limit-w1", "http_client_limit", "app-concurrency-limit", {"queueing"}),
    _case("http-client-limit-w2", "http_client_limit", "app-concurrency-limit", {"queueing"}, workers=2),
    # Sync endpoints waiting on a slow dependency, every thread taken.
    _case("sync-threadpool-w1", "sync_threadpool", "threadpool-saturated", {"queueing"}, users=80),
    _case("sync-threadpool-w2", "sync_threadpool", "threadpool-saturated", {"queueing"}, workers=2, users=120),
    _case(
        "sample-sync-sleep-w1",
        None,
        "threadpool-saturated",
        {"queueing"},
        users=80,
        options=("--scenario", "sync-sleep"),
    ),
    # The app's database pool too small, whichever library keeps it.
    _case("small-pool-w1", "small_pool", "pool-exhausted", {"queueing"}),
    _case("small-pool-w2", "small_pool", "pool-exhausted", {"queueing", "worker-imbalance"}, workers=2),
    _case("sqlalchemy-pool-w1", "sqlalchemy_pool", "pool-exhausted", {"queueing"}),
    _case("sqlalchemy-pool-w2", "sqlalchemy_pool", "pool-exhausted", {"queueing", "worker-imbalance"}, workers=2),
    _case("asyncpg-pool-w1", "asyncpg_pool", "pool-exhausted", {"queueing"}),
    _case(
        "sample-slow-query-small-pool",
        None,
        "pool-exhausted",
        {"queueing"},
        options=("--scenario", "slow-query", "--pool-min", "1", "--pool-max", "2"),
    ),
    # The time goes into the database: slow queries, heavy SQL, row locks.
    _case("slow-query-w1", "slow_query", "db-bound", {"queueing"}),
    _case("heavy-query-w1", "heavy_query", "db-bound", CPU_OF_A_SMALL_BOX | {"too-few-workers"}),
    _case(
        "sample-slow-query-w1",
        None,
        "db-bound",
        {"queueing"},
        users=10,
        options=("--scenario", "slow-query", "--pool-min", "10", "--pool-max", "12"),
    ),
    _case("hot-row-w1", "hot_row", "lock-contention", {"db-bound", "queueing"}),
    _case("hot-row-w2", "hot_row", "lock-contention", {"db-bound", "queueing", "worker-imbalance"}, workers=2),
    # Out of connections at the server.
    _case(
        "sample-per-request-limit",
        None,
        "db-connection-limit",
        {"queueing", "too-few-workers"} | CPU_OF_A_SMALL_BOX,
        workers=2,
        users=40,
        options=("--db-mode", "per-request", "--db-max-connections", "12", "--pool-max", "2"),
    ),
    # One process, one core.
    _case("cpu-bound-w1", "cpu_bound", "too-few-workers", CPU_OF_A_SMALL_BOX, users=4),
    _case("cpu-def-w1", "cpu_def", "too-few-workers", CPU_OF_A_SMALL_BOX, users=8),
    _case("n-plus-one-w1", "n_plus_one", "too-few-workers", CPU_OF_A_SMALL_BOX | {"db-bound", "pool-exhausted"}),
    _case(
        "sample-crud-w1",
        None,
        "too-few-workers",
        CPU_OF_A_SMALL_BOX | {"pool-exhausted", "loadgen-saturated"},
        users=50,
    ),
    # Stock multi-worker uvicorn without TCP_NODELAY, the users' own requests delayed (p50 ~60 ms for 15 ms of work).
    _case("nodelay-stock-w2", "healthy_io", "nodelay-delay", workers=2),
    _case("nodelay-stock-w3", "healthy_io", "nodelay-delay", workers=3),
    # Calm: healthy apps with room, served every way, with and without think time. Nothing may be warned of.
    _case("calm-io-stock-w1", "healthy_io"),
    _case("calm-io-serve-w2", "healthy_io", server="serve", workers=2),
    _case("calm-io-serve-w3", "healthy_io", server="serve", workers=3),
    _case("calm-db-stock-w1", "healthy_db"),
    _case("calm-db-serve-w2", "healthy_db", server="serve", workers=2),
    _case("calm-sync-stock-w1", "healthy_sync"),
    _case("calm-io-stock-w2-think", "healthy_io", workers=2, think=True),
    _case("calm-io-stock-w3-think", "healthy_io", workers=3, think=True),
    _case("calm-db-stock-w2-think", "healthy_db", workers=2, think=True),
    _case("calm-io-gunicorn-w2-think", "healthy_io", server="gunicorn", workers=2, think=True),
    _case("calm-db-gunicorn-w2", "healthy_db", server="gunicorn", workers=2),
    _case("calm-chatty-stock-w1-think", "chatty", think=True),
    _case("calm-chatty-serve-w2-think", "chatty", server="serve", workers=2, think=True),
    _case("calm-slow-start-stock-w1-think", "slow_start", think=True),
    _case("calm-slow-start-serve-w2", "slow_start", server="serve", workers=2),
    _case("calm-sqlalchemy-big-pool-think", "sqlalchemy_pool", think=True, env={"POOL_SIZE": "20"}),
    _case("calm-asyncpg-big-pool-think", "asyncpg_pool", think=True, env={"POOL_MAX": "10"}),
    _case("calm-http-client-big-limit", "http_client_limit", env={"LIMIT": "100"}),
    # The advised fixes: the same apps, the finding gone (and nothing false in its place).
    _case("fixed-hot-row-spread", "hot_row", set(), {"db-bound", "queueing"}, env={"ROWS": "1000"}),
    _case("fixed-semaphore", "semaphore", env={"LIMIT": "100"}),
)
"""Every run of the corpus (at least 40, at least 12 calm)."""

BY_NAME = {c.name: c for c in CASES}
