"""The run configuration: one frozen value, replaced (never mutated) when the user changes a setting."""

from __future__ import annotations

import dataclasses
import math
import os
import re
import shlex
import shutil
import string
import sys
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import psycopg

from loadtui.errors import UsageError
from loadtui.model import build

DbMode = Literal["pool", "per-request"]


@dataclass(frozen=True)
class Scenario:
    """A named experiment: one Locust user class of the bundled locustfile (DESIGN 3.3 and 5)."""

    name: str
    """The name used by `--scenario` and the dashboard's picker."""
    user_class: str
    """The user class in `sample_app/locustfile.py`."""
    lesson: str
    """What the user should learn from it, in one line."""


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("crud", "CrudUser", "75% reads / 20% writes / 5% deletes: one worker leaves the CPU idle; add workers"),
    Scenario("ping", "PingUser", "the ceiling of server and load generator; the access log costs throughput"),
    Scenario("sync-sleep", "SyncSleepUser", "3 sleeps in a sync def: the threadpool caps throughput"),
    Scenario("async-sequential", "AsyncSequentialUser", "3 independent awaits in a row: 3x the latency"),
    Scenario("async-dependent", "AsyncDependentUser", "3 dependent awaits: they cannot overlap"),
    Scenario("async-gather", "AsyncGatherUser", "3 awaits gathered: the latency of one"),
    Scenario("blocking", "BlockingUser", "time.sleep in async def: the event loop serialises requests"),
    Scenario("slow-query", "SlowQueryUser", "pg_sleep through a small pool: requests wait for connections"),
)
SCENARIO_NAMES: tuple[str, ...] = tuple(s.name for s in SCENARIOS)

SLEEP_SCENARIOS = frozenset(
    {"sync-sleep", "async-sequential", "async-dependent", "async-gather", "blocking", "slow-query"}
)
"""Scenarios whose unit of work is `--sleep-ms` (the header shows it only for them)."""

MAX_RATE = 1_000_000
"""Arrivals per second at most: far beyond what one machine's load generator sends, a typo's guard."""

RESTART_FIELDS: tuple[str, ...] = ("pool_min", "pool_max", "db_mode", "access_log", "sleep_ms", "pool_timeout")
"""RunConfig fields the app reads only at start-up: changing them restarts it."""


def scenario(name: str) -> Scenario:
    """The scenario called `name`."""
    for s in SCENARIOS:
        if s.name == name:
            return s
    raise UsageError(f"unknown scenario {name!r}; choose one of: {', '.join(SCENARIO_NAMES)}")


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines a run. Fields marked `restart` need the app restarted to change."""

    workers: int = 1
    """App worker processes (live: SIGTTIN/SIGTTOU to the supervisor)."""
    pool_min: int = 2
    """Connections each worker's pool keeps open (restart)."""
    pool_max: int = 10
    """Most connections each worker's pool opens (restart)."""
    db_mode: DbMode = "pool"
    """`pool` or `per-request` connections in the sample app (restart)."""
    access_log: bool = False
    """uvicorn's access log (restart)."""
    users: int = 50
    """Simulated users (live)."""
    spawn_rate: float = 10.0
    """Users started per second (live)."""
    rate: float | None = None
    """Arrivals per second (`--rate`, the open model, live) instead of `users` looping; None: users."""
    arrivals: Literal["uniform", "poisson"] = "uniform"
    """How arrivals are spaced with `rate`: evenly, or as a Poisson process (live)."""
    max_in_flight: int = 1000
    """Arrivals running at once at most with `rate`; arrivals beyond it are dropped and counted (live)."""
    scenario: str = "crud"
    """The scenario, i.e. Locust user class, that runs (restarts the load generator)."""
    sleep_ms: int = 50
    """Unit of work of the sleep scenarios and the slow query, in milliseconds (restart)."""
    pool_timeout: float = 10.0
    """Seconds a sample-app request waits for a pooled connection (restart)."""
    dsn: str | None = None
    """An external PostgreSQL server; None starts the embedded one."""
    db_max_connections: int = 100
    """`max_connections` of the embedded server."""
    fast_db: bool = False
    """Run the embedded server without fsync and synchronous commit: faster writes, but a killed server loses
    committed rows. Off by default: the figures are those of a durable database, as in production."""
    app: str | None = None
    """The user's app command with {host}, {port}, {workers} placeholders; None runs the sample app."""
    host: str | None = None
    """Drive this URL instead of an app loadtui starts."""
    port: int = 0
    """Port for the app loadtui starts; 0 picks a free one."""
    locustfile: str | None = None
    """The user's locustfile; None uses the bundled one."""
    loadgen_processes: int | Literal["auto"] = 1
    """Locust processes: 1 runs a local runner, more run a master with local workers."""
    master_bind: str | None = None
    """Bind the Locust master to this address so remote workers can join (host:port); None keeps it private."""
    record: str | None = None
    """Session log path; None picks one under ./loadtui-sessions/."""
    rebalance: bool = True
    """After a worker change or a restart, move the users' keep-alive connections so every worker gets its share
    (`--no-rebalance` keeps them where they are, to study connection stickiness itself)."""
    probe: bool = True
    """Send a few probe requests a second to a path the app does not route (probe.py): tells a blocked event loop from
    requests waiting inside the app, without the helper (`--no-probe` turns it off)."""
    auto_confirm: bool = True
    """When a warning or critical finding starts, sample the busiest workers' stacks once with py-spy and attach what
    they show (`--no-auto-confirm` turns it off; without ptrace permission it stops after saying why once)."""
    stats_listen: str | None = None
    """`HOST:PORT` where workers of apps loadtui did not start send their figures over UDP (remote.py)."""
    expect_remote_workers: int = 0
    """Remote `locust --worker` processes to wait for before starting (`--expect-workers`, with `--master-bind`)."""
    scenario_given: bool = False
    """True when `--scenario` was given: with `--locustfile`, it then picks the user class by its name."""

    def replace(self, **changes: Any) -> RunConfig:
        """A copy with `changes` applied (validated)."""
        new = dataclasses.replace(self, **changes)
        new.validate()
        return new

    def needs_restart(self, other: RunConfig) -> list[str]:
        """Fields that differ from `other` and can only be applied by restarting the app."""
        return [f for f in RESTART_FIELDS if getattr(self, f) != getattr(other, f)]

    @property
    def open_model(self) -> bool:
        """True when the load comes by arrival rate (`--rate`), not from users looping."""
        return self.rate is not None

    @property
    def has_load(self) -> bool:
        """True when the configuration sends any load (some users, or a rate above 0)."""
        return self.rate > 0 if self.rate is not None else self.users > 0

    @property
    def load_label(self) -> str:
        """The load in words: `50 users` or `200 req/s`."""
        return f"{self.rate:g} req/s" if self.rate is not None else f"{self.users} users"

    @property
    def closes_only_idle_connections(self) -> bool:
        """True when the app's server, removing a worker, closes only connections with no request in progress
        (uvicorn, which the sample app and `loadtui.serve` run): a request reset there before any answer was never
        read, so sending it again is safe whatever its method. Other servers are not assumed to."""
        if self.host is not None:
            return False
        if self.app is None:
            return True
        words = re.split(r"[\s/]+", self.app)
        return any(w in ("uvicorn", "loadtui.serve") or w.startswith("uvicorn.") for w in words)

    @property
    def sample_app(self) -> bool:
        """True when loadtui runs its bundled sample app."""
        return self.app is None and self.host is None

    @property
    def pool_connections(self) -> int:
        """Connections the app may open at most (`workers × pool_max` in pool mode)."""
        return self.workers * self.pool_max

    def loadgen_process_count(self) -> int:
        """Resolved `--loadgen-processes`: `auto` leaves one core to the app on small machines."""
        if self.loadgen_processes == "auto":
            cores = os.cpu_count() or 1
            return max(1, min(8, cores // 2))
        return self.loadgen_processes

    def validate(self) -> None:
        """Raise :class:`UsageError` naming the first problem and its fix."""
        if self.workers < 1:
            raise UsageError(f"--workers must be at least 1 (got {self.workers})")
        if self.pool_min < 0 or self.pool_max < 1:
            raise UsageError("--pool-min must be ≥ 0 and --pool-max ≥ 1")
        if self.pool_min > self.pool_max:
            raise UsageError(f"--pool-min {self.pool_min} is above --pool-max {self.pool_max}; lower min or raise max")
        if self.db_mode not in ("pool", "per-request"):
            raise UsageError(f"--db-mode must be pool or per-request (got {self.db_mode!r})")
        if self.users < 0:
            raise UsageError(f"--users must be 0 or more (got {self.users})")
        if self.rate is not None and not (math.isfinite(self.rate) and 0 <= self.rate <= MAX_RATE):
            raise UsageError(f"--rate must be a number of requests per second from 0 to {MAX_RATE:,} (got {self.rate})")
        if self.arrivals not in ("uniform", "poisson"):
            raise UsageError(f"--arrivals must be uniform or poisson (got {self.arrivals!r})")
        if self.max_in_flight < 1:
            raise UsageError(f"--max-in-flight must be at least 1 (got {self.max_in_flight})")
        if not (math.isfinite(self.spawn_rate) and self.spawn_rate > 0):
            raise UsageError(f"--spawn-rate must be a number above 0 (got {self.spawn_rate})")
        if not (math.isfinite(self.pool_timeout) and self.pool_timeout > 0):
            raise UsageError(f"--pool-timeout must be a number of seconds above 0 (got {self.pool_timeout})")
        if self.expect_remote_workers < 0:
            raise UsageError(f"--expect-workers must be 0 or more (got {self.expect_remote_workers})")
        if self.expect_remote_workers and self.master_bind is None:
            raise UsageError("--expect-workers needs --master-bind HOST:PORT, where the remote workers connect")
        if self.master_bind is not None:
            host, _, port = self.master_bind.rpartition(":")
            if not host or not (port.isascii() and port.isdigit()) or not 1 <= int(port) <= 65535:
                raise UsageError(
                    f"--master-bind must be HOST:PORT with a port from 1 to 65535 (got {self.master_bind!r})"
                )
        if self.sleep_ms < 0:
            raise UsageError(f"--sleep-ms must be 0 or more (got {self.sleep_ms})")
        if self.db_max_connections < 5:
            raise UsageError(f"--db-max-connections must be at least 5 (got {self.db_max_connections})")
        if not 0 <= self.port <= 65535:
            raise UsageError(f"--port must be between 0 and 65535 (got {self.port})")
        if self.loadgen_processes != "auto" and self.loadgen_processes < 1:
            raise UsageError("--loadgen-processes must be at least 1 or 'auto'")
        if self.locustfile is None:
            scenario(self.scenario)
        elif not Path(self.locustfile).is_file():
            raise UsageError(f"--locustfile {self.locustfile} does not exist; give the path of a Locust file")
        if self.app is not None:
            check_app_command(self.app, self.workers)
        if self.host is not None:
            check_host(self.host)

    def to_dict(self) -> dict[str, Any]:
        """The config as recorded in the session log and shown in reports: a `--dsn` password is never written."""
        data = dataclasses.asdict(self)
        if self.dsn is not None:
            data["dsn"] = redact_dsn(self.dsn)
        if self.host is not None:
            data["host"] = redact_url(self.host)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        """Inverse of :meth:`to_dict`; unknown keys (from newer versions) are ignored."""
        return build(cls, data)


APP_PLACEHOLDERS = frozenset({"host", "port", "workers"})
"""What `--app` may contain in braces."""

APP_EXAMPLE = '"uvicorn myapp:app --host {host} --port {port} --workers {workers}"'


def _literal_workers(words: list[str]) -> int | None:
    """The worker count written into an `--app` command (`--workers 2`, `--workers=2`, gunicorn's `-w 2`), if any."""
    for i, word in enumerate(words):
        value = None
        if word in ("--workers", "-w") and i + 1 < len(words):
            value = words[i + 1]
        elif word.startswith("--workers="):
            value = word.split("=", 1)[1]
        if value is not None and value.isascii() and value.isdigit():
            return int(value)
    return None


def app_path() -> str:
    """The PATH `--app` runs with: the user's, then the folder of loadtui's own Python (where the uvicorn installed
    with loadtui is, so `uvicorn myapp:app` works from an environment that was never activated)."""
    path = os.environ.get("PATH", os.defpath)
    here = str(Path(sys.executable).parent)
    return path if here in path.split(os.pathsep) else f"{path}{os.pathsep}{here}" if path else here


def check_app_command(app: str, workers: int = 1) -> None:
    """`--app` splits into words like a shell would (it is never run by one) and uses only our placeholders; more
    than one worker needs `{workers}`, or the app would start its own count while loadtui waits for `workers`."""
    try:
        words = shlex.split(app)
    except ValueError as exc:
        raise UsageError(f"--app {app!r}: {str(exc).lower()}; balance the quotes, e.g. {APP_EXAMPLE}") from None
    if not words:
        raise UsageError(f"--app is empty; give the command that starts your app, e.g. {APP_EXAMPLE}")
    fields: set[str] = set()
    for word in words:
        try:
            fields |= {name for _, name, _, _ in string.Formatter().parse(word) if name is not None}
        except ValueError as exc:
            raise UsageError(f"--app {app!r}: {exc}; write a literal brace as {{{{ or }}}}") from None
    unknown = sorted(fields - APP_PLACEHOLDERS)
    if unknown:
        raise UsageError(
            f"--app uses {{{unknown[0]}}}, which loadtui does not fill; use {{host}}, {{port}}, {{workers}} "
            "(a literal brace is {{ or }})"
        )
    if "port" not in fields:
        raise UsageError(f"--app must contain {{port}} (and may use {{host}}, {{workers}}), e.g. {APP_EXAMPLE}")
    program = words[0]
    if "{" not in program and shutil.which(program, path=app_path()) is None:
        raise UsageError(f"--app: {program!r} is not a program on PATH; give the command that starts your app")
    if "workers" not in fields:
        fixed = _literal_workers(words)
        if fixed is None and workers > 1:
            raise UsageError(
                f"--workers {workers} needs {{workers}} in --app (e.g. ... --workers {{workers}}), or loadtui cannot "
                "start or change them; or leave --workers out to run the app as its command says"
            )
        if fixed is not None and fixed != workers:
            raise UsageError(
                f"--app starts {fixed} worker(s) (its own --workers {fixed}) but --workers asks for {workers}: write "
                "--workers {workers} in the command, or give the same number"
            )


HOST_IGNORES: dict[str, str] = {
    "workers": "--workers",
    "pool_min": "--pool-min",
    "pool_max": "--pool-max",
    "pool_timeout": "--pool-timeout",
    "db_mode": "--db-mode",
    "access_log": "--access-log",
    "sleep_ms": "--sleep-ms",
    "app": "--app",
    "port": "--port",
}
"""Settings of an app loadtui starts: with `--host` (an app already running) they would be silently ignored."""

MIB = 2**20
WORKER_BYTES = 80 * MIB
"""About what one uvicorn worker of a small FastAPI app takes (the sample app: 55–60 MiB)."""

USER_BYTES = MIB // 4
"""About what one Locust user with its connection takes in the load generator."""

MAX_DB_CONNECTIONS = 10_000
"""Above this, the embedded server's shared memory alone would not fit a laptop; nobody needs it to find a limit."""


def check_fits_machine(config: RunConfig, memory_bytes: int, cores: int, open_files: int) -> None:
    """Refuse, before anything starts, what this machine cannot hold, saying the limit and why.

    `memory_bytes`: memory available now; `open_files`: the hard limit of open files (every user holds a socket).
    """
    if config.host is not None:
        given = [flag for name, flag in HOST_IGNORES.items() if getattr(config, name) != getattr(RunConfig(), name)]
        if given:
            raise UsageError(
                f"{given[0]} has no effect with --host: loadtui does not start that app; drop it, or use --app "
                "to let loadtui start and configure it"
            )
    most_workers = max(1, min(256, memory_bytes // WORKER_BYTES))
    if config.workers > most_workers:
        raise UsageError(
            f"--workers {config.workers} is more than this machine holds: at most {most_workers} "
            f"(each worker takes about {WORKER_BYTES // MIB} MiB; {memory_bytes // MIB:,} MiB are available)"
        )
    most_users = max(1, min(memory_bytes // USER_BYTES, config.loadgen_process_count() * open_files - 1024))
    if config.open_model and config.max_in_flight > most_users:
        raise UsageError(
            f"--max-in-flight {config.max_in_flight:,} is more than this machine holds: at most {most_users:,} (each "
            f"arrival in flight keeps a connection open: {open_files:,} open files allowed)"
        )
    if config.users > most_users:
        raise UsageError(
            f"--users {config.users:,} is more than this machine holds: at most {most_users:,} (each user keeps a "
            f"connection open: {open_files:,} open files allowed, {memory_bytes // MIB:,} MiB available)"
        )
    most_loadgen = 4 * cores
    if config.loadgen_processes != "auto" and config.loadgen_processes > most_loadgen:
        raise UsageError(
            f"--loadgen-processes {config.loadgen_processes} is more than {cores} cores can run: at most "
            f"{most_loadgen}, or auto"
        )
    if config.db_max_connections > MAX_DB_CONNECTIONS:
        raise UsageError(
            f"--db-max-connections {config.db_max_connections:,} is absurd for the embedded server: at most "
            f"{MAX_DB_CONNECTIONS:,}"
        )


def redact_dsn(dsn: str) -> str:
    """The DSN with its password replaced by `***`, found the way libpq finds it (any spelling: a URL's `:pw@` or
    `?password=`, percent-encoded or not, a quoted or escaped `password=` value); a DSN that does not parse is
    hidden whole."""
    try:
        params = psycopg.conninfo.conninfo_to_dict(dsn)
    except psycopg.Error:
        return "*** (a DSN that does not parse)"
    if "password" not in params:
        return dsn
    return psycopg.conninfo.make_conninfo(**{k: "***" if k == "password" else str(v) for k, v in params.items()})


def redact_url(url: str) -> str:
    """A URL with the password of its `user:password@` replaced by `***` (for the log and reports)."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username or ''}:***@{parts.netloc.rpartition('@')[2]}"
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def check_host(host: str) -> None:
    """`--host` must be an http(s) URL with a host and, if given, a numeric port."""
    example = "give a URL like http://127.0.0.1:8000"
    if not host.startswith(("http://", "https://")):
        raise UsageError(f"--host must be a URL like http://127.0.0.1:8000 (got {host!r})")
    try:
        parts = urllib.parse.urlsplit(host)
        _ = parts.port  # raises for a port that is not a number from 0 to 65535
    except ValueError as exc:
        raise UsageError(f"--host {host!r} is not a valid URL ({exc}); {example}") from None
    if not parts.hostname or any(c.isspace() or not c.isprintable() for c in host):
        raise UsageError(f"--host {host!r} has no host name, or spaces in it; {example}")


EMBEDDED_RESERVED = 3
"""Slots the embedded server keeps for superusers (PostgreSQL's superuser_reserved_connections): the app's role may
use `--db-max-connections` less these."""


def check_pool_fits(config: RunConfig, connections_allowed: int) -> None:
    """Refuse a configuration whose pools could take more connections than the server allows the app.

    `connections_allowed` is the server's limit for the app's role (max_connections minus reserved slots).
    """
    if config.db_mode != "pool" or not config.sample_app:
        return
    if config.workers * config.pool_min > connections_allowed:
        raise UsageError(
            f"{config.workers} workers × pool min {config.pool_min} = {config.workers * config.pool_min} connections "
            f"exceed the {connections_allowed} PostgreSQL allows the app; the pools could not open. Lower --pool-min "
            f"or --workers, or raise --db-max-connections"
        )
    if config.pool_connections > connections_allowed:
        raise UsageError(
            f"{config.workers} workers × pool max {config.pool_max} = {config.pool_connections} connections exceed "
            f"the {connections_allowed} PostgreSQL allows the app; lower --pool-max or --workers, or raise "
            f"--db-max-connections"
        )
