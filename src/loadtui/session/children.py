"""What a session starts and stops: the `--stats-listen` receiver, the database (and its keeper), the app, the probe
and the load generator. One job: bring them up in order, bring a new load generator when the scenario changes, and
take them all down; the session decides when.
"""

from __future__ import annotations

import os
import threading
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from loadtui.appstats import STATS_TOKEN_ENV
from loadtui.config import RunConfig, check_pool_fits, scenario
from loadtui.errors import RunFailed, UsageError
from loadtui.loadgen import LoadGen, LoadGenError, bundled_locustfile
from loadtui.measure.collectors import DbCollector
from loadtui.measure.probe import Prober
from loadtui.measure.remote import StatsListener, parse_listen
from loadtui.measure.ticks import TickBuilder
from loadtui.procs import logfiles
from loadtui.procs.processes import Guardian
from loadtui.session.health import HealthWatcher
from loadtui.stack.database import EmbeddedDatabase
from loadtui.stack.server import ConnectionLimits, DatabaseError, check_dsn, read_limits
from loadtui.stack.supervisor import AppStartError, AppSupervisor, wait_for_url

Say = Callable[[str], object]
EventSink = Callable[..., object]
"""`event(kind, message, **data)`: how the children tell the session what happened."""


class Children:
    """The session's child processes and threads, and where they are reached."""

    def __init__(
        self,
        *,
        run_dir: Path,
        guardian: Guardian,
        state_dir: Path | None,
        builder: TickBuilder,
        health: HealthWatcher,
        event: EventSink,
        on_stats: Callable[[dict[str, Any]], None],
        cancel: threading.Event,
        stop: threading.Event,
        dsn: str | None,
    ) -> None:
        self._run_dir = run_dir
        self.guardian = guardian
        self._state_dir = state_dir
        self._builder = builder
        self._health = health
        self._event = event
        self._on_stats = on_stats
        self._cancel = cancel
        self._stop = stop
        self.database: EmbeddedDatabase | None = None
        self.dsn: str | None = dsn
        self.admin_dsn: str | None = dsn
        self.limits: ConnectionLimits | None = None
        self.app: AppSupervisor | None = None
        self.loadgen: LoadGen | None = None
        self.target_url: str | None = None
        self.prober: Prober | None = None
        """The probe requests (probe.py), started once the app answers unless --no-probe."""
        self.listener: StatsListener | None = None
        """`--stats-listen`'s receiver, while it runs."""
        self._keeper: threading.Thread | None = None
        self._db_died = threading.Event()

    def open(self, cfg: RunConfig, say: Say) -> None:
        """Start everything `cfg` needs, in order; on any failure the caller calls :meth:`shutdown`."""
        self._open_listener(cfg, say)
        self._open_database(cfg, say)
        self._open_app(cfg, say)
        if cfg.probe and self.target_url is not None:
            self.prober = Prober(self.target_url)
            self.prober.start()
        say("starting the load generator")
        self.loadgen = self.new_loadgen(cfg)
        try:
            self.loadgen.start()
        except LoadGenError as exc:
            raise RunFailed(f"the load generator did not start: {exc}") from None
        self._event(
            "loadgen-started",
            f"load generator ready ({cfg.loadgen_process_count()} process(es))",
            pids=self.loadgen.pids,
            master_port=self.loadgen.master_port,
        )

    def _open_listener(self, cfg: RunConfig, say: Say) -> None:
        """`--stats-listen`: receive the figures of workers loadtui did not start."""
        if cfg.stats_listen is None:
            return
        token = os.environ.get(STATS_TOKEN_ENV) or None
        host, port = parse_listen(cfg.stats_listen, token)
        self.listener = StatsListener(host, port, token)
        self.listener.start()
        self._builder.remote = self.listener
        say(f"listening for workers' figures on udp://{host}:{port}" + (" (signed only)" if token else ""))

    def _open_database(self, cfg: RunConfig, say: Say) -> None:
        if cfg.dsn is not None:
            if cfg.host is None:
                say("checking the database")
            check_dsn(cfg.dsn)
            self.limits = read_limits(cfg.dsn)
        elif cfg.host is None:
            say("starting embedded PostgreSQL")
            self.database = EmbeddedDatabase(
                max_connections=cfg.db_max_connections,
                state_dir=self._state_dir,
                guardian=self.guardian,
                durable=not cfg.fast_db,
            )
            try:
                self.database.start()
            except DatabaseError as exc:
                raise RunFailed(str(exc)) from None
            # The server's restarts are spawned by a thread that lives as long as the session: a child's
            # parent-death signal is tied to the thread that started it.
            self._keeper = threading.Thread(target=self._keep_database, name="loadtui-db-keeper", daemon=True)
            self._keeper.start()
            self.dsn = self.database.app_dsn
            self.admin_dsn = self.database.admin_dsn
            self.limits = self.database.limits()
            self._event(
                "db-started",
                f"embedded PostgreSQL ready in {self.database.start_seconds:.2f} s",
                max_connections=self.limits.max_connections,
                start_seconds=round(self.database.start_seconds or 0, 3),
            )
        if self.limits is not None and cfg.host is None:
            check_pool_fits(cfg, self.limits.for_ordinary_roles)
            reserved = self.limits.max_connections - self.limits.for_ordinary_roles
            self._builder.db = DbCollector(self.admin_dsn or "", reserved=reserved)

    def _open_app(self, cfg: RunConfig, say: Say) -> None:
        if cfg.host is not None:
            say(f"checking {cfg.host}")
            if not wait_for_url(cfg.host, timeout=5):
                raise UsageError(f"--host {cfg.host} does not answer; start your app or fix the URL")
            self.target_url = cfg.host
            url = urllib.parse.urlsplit(cfg.host)
            if url.hostname in ("localhost", "127.0.0.1", "::1"):
                # The app runs on this machine outside loadtui's tree: its CPU is the app's, not a disturbance.
                self._builder.outside.app_port = url.port or (443 if url.scheme == "https" else 80)
            return
        say(f"starting the app with {cfg.workers} worker(s)")
        self.app = AppSupervisor(run_dir=self._run_dir, guardian=self.guardian, cancel=self._cancel)
        try:
            self.app.start(cfg, self.dsn, say)
        except AppStartError as exc:
            raise RunFailed(str(exc)) from None
        self.target_url = self.app.url
        self._health.app_started(self.app.worker_pids())
        self._event(
            "app-started",
            f"app ready on {self.app.url} with {cfg.workers} worker(s)",
            url=self.app.url,
            workers=self.app.worker_pids(),
        )

    def new_loadgen(self, cfg: RunConfig) -> LoadGen:
        """A load generator (not started) for `cfg`'s scenario or locustfile."""
        assert self.target_url is not None
        locustfile = Path(cfg.locustfile) if cfg.locustfile else bundled_locustfile()
        return LoadGen(
            host=self.target_url,
            locustfile=locustfile,
            scenario=cfg.scenario if cfg.locustfile and cfg.scenario_given else None,
            user_classes=[scenario(cfg.scenario).user_class] if cfg.locustfile is None else [],
            processes=cfg.loadgen_process_count(),
            master_bind=cfg.master_bind,
            expect_remote_workers=cfg.expect_remote_workers,
            guardian=self.guardian,
            on_stats=self._on_stats,
            stderr_path=self._run_dir / "loadgen.log",
        )

    def database_died(self) -> None:
        """The tick thread saw the embedded server gone: the keeper starts it again."""
        self._db_died.set()

    def _keep_database(self) -> None:
        """Start the embedded server again whenever it dies (SIGKILL, OOM killer) until the session ends."""
        while not self._stop.is_set():
            if not self._db_died.wait(0.5):
                continue
            self._db_died.clear()
            db = self.database
            if db is None or db.alive or self._stop.is_set():
                continue
            try:
                seconds = db.revive()
            except DatabaseError as exc:
                self._event("error", f"embedded PostgreSQL did not come back: {exc}")
                continue
            self._event("db-started", f"embedded PostgreSQL restarted in {seconds:.2f} s after it died", restarted=True)

    def join_keeper(self, timeout: float) -> None:
        """Wait for a restart of the embedded server that is under way (at close)."""
        if self._keeper is not None:
            self._keeper.join(timeout)

    def cap_logs(self) -> None:
        """Cut the children's logs to their size cap: a chatty app's output must not fill the disk."""
        for log in ("app.log", "loadgen.log"):
            logfiles.cap(self._run_dir / log)

    def shutdown(self) -> None:
        """Stop everything, the load first and the database last."""
        if self.listener is not None:
            self.listener.stop()
        if self.prober is not None:
            self.prober.stop()
        if self.loadgen is not None:
            self.loadgen.stop()
        if self.app is not None:
            self.app.stop()
        if self._builder.db is not None:
            self._builder.db.close()
        if self.database is not None:
            self.database.stop()
        self.guardian.close()
