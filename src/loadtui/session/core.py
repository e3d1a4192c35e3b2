"""The session: the headless core that starts everything, measures once a second and records it (DESIGN 2).

A :class:`Session` owns the database, the app supervisor, the load generator, the collectors, the recorder and the
diagnoser. Front ends (the Textual dashboard, headless mode, tests) give it callbacks for ticks and events and call
its control methods. It never imports Textual.

Threads: the thread that calls :meth:`Session.open` and the control methods starts child processes, so it must live
as long as the session (children get a parent-death signal tied to it). Ticks are built by the session's own tick
thread, paced by the load generator's per-second records, so collection never overlaps itself.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import os
import queue
import shutil
import tempfile
import threading
import time
import urllib.parse
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import psutil

from loadtui.appstats import STATS_TOKEN_ENV
from loadtui.config import RunConfig, check_pool_fits, scenario
from loadtui.diagnose import Diagnoser
from loadtui.errors import RunFailed, UsageError
from loadtui.loadgen import LoadGen, LoadGenError, bundled_locustfile
from loadtui.measure import remote, stacks
from loadtui.measure.collectors import DbCollector
from loadtui.measure.probe import Prober
from loadtui.measure.remote import StatsListener, parse_listen
from loadtui.measure.ticks import Running, TickBuilder
from loadtui.model import Event, EventKind, Tick
from loadtui.procs import logfiles, stale
from loadtui.results import segments, verdict
from loadtui.results.recorder import Recorder, default_path
from loadtui.results.segments import Segment
from loadtui.results.summary import Summary
from loadtui.session import rebalance
from loadtui.session.health import HealthWatcher, Observation
from loadtui.stack.database import (
    ConnectionLimits,
    DatabaseError,
    EmbeddedDatabase,
    check_dsn,
    default_state_dir,
    read_limits,
)
from loadtui.stack.supervisor import AppStartError, AppSupervisor, wait_for_url

TickCallback = Callable[[Tick], object]
EventCallback = Callable[[Event], object]

RECENT_TICKS = 120
"""Ticks kept in memory; the segment summary is computed from the session log, which holds every tick."""

DRAIN_SECONDS = 5.0
"""While a worker is removed, the load generator retries what it drops unread for this long."""

DB_REVIVE_S = 30.0
"""At close, how long to wait for a restart of the embedded server that is under way."""

TICK_TIMEOUT = 1.2
"""Without a load-generator record for this long (paused, restarting), a tick is built without load figures."""

FIRST_STEP_S = 2.0
"""The load starts with one user per worker for this long, then ramps to the users asked for.

That first level measures what a request costs when nothing queues (the service time), which no later second can:
the diagnosis compares with it to tell a fixed limit (throughput flat, latency growing with the users) from a merely
slow dependency, on apps it knows nothing about — whatever spawn rate the user chose."""


LOG_CHECK_TICKS = 10
"""Every this many seconds the children's logs are checked against their size cap (logfiles.py)."""

REPLACED_WORKER_READY_S = 2.0
"""Seconds a worker the supervisor started in place of a dead one gets to import the app before load moves to it."""


class Session:
    """One run of loadtui: from :meth:`open` to :meth:`close`."""

    def __init__(
        self,
        config: RunConfig,
        *,
        on_tick: TickCallback | None = None,
        on_event: EventCallback | None = None,
        state_dir: Path | None = None,
        recent_ticks: int = RECENT_TICKS,
        slos: Sequence[verdict.Slo] = (),
    ) -> None:
        config.validate()
        self.config = config
        """The configuration applied now."""
        self.pending: RunConfig = config
        """The configuration the user asked for; differs from :attr:`config` while a restart is pending.

        Its one owner: the dashboard reads it and changes it through :meth:`propose` only."""
        self._pending_lock = threading.Lock()
        self._tick_callbacks: list[TickCallback] = [on_tick] if on_tick else []
        self._event_callbacks: list[EventCallback] = [on_event] if on_event else []
        self._state_dir = state_dir
        self.record_path = Path(config.record) if config.record else default_path(config)
        self.recorder: Recorder | None = None
        self.run_dir = Path(tempfile.mkdtemp(prefix="loadtui-run-"))
        self._run_lock = stale.hold(self.run_dir)
        """Held while the session lives: a later start sweeps run directories whose lock is free (stale.py)."""
        from loadtui.procs.processes import Guardian

        self.guardian = Guardian()
        self.database: EmbeddedDatabase | None = None
        self.dsn: str | None = config.dsn
        self.admin_dsn: str | None = config.dsn
        self.limits: ConnectionLimits | None = None
        self.app: AppSupervisor | None = None
        self.loadgen: LoadGen | None = None
        self.target_url: str | None = None
        self.prober: Prober | None = None
        """The probe requests (probe.py), started once the app answers unless --no-probe."""
        self._builder = TickBuilder(self.run_dir / "appstats", self._running)
        self._diagnoser = Diagnoser()
        self._stats_queue: queue.Queue[dict[str, Any]] = queue.Queue()
        self._started = time.monotonic()
        self._started_at = dt.datetime.now(dt.UTC)
        self._stop = threading.Event()
        self._tick_thread: threading.Thread | None = None
        self._segment = 0
        self._segment_configs: dict[int, RunConfig] = {0: config}
        self.ticks: deque[Tick] = deque(maxlen=recent_ticks)
        """The most recent ticks (bounded: memory stays flat however long the session; the log has them all)."""
        self.tick_count = 0
        """Ticks built so far."""
        self._requests = 0.0
        self._failures = 0.0
        self.events: list[Event] = []
        self.paused = False
        self._busy = threading.Lock()
        """Held by one change at a time (workers, apply)."""
        self._changing = threading.Event()
        """Set while a change replaces processes on purpose: read by the tick thread, never the lock itself."""
        self._first_step_until: float | None = None
        """Session time when the first step (one user per worker) ends; None once over or overridden."""
        self._first_step_lock = threading.Lock()
        self._spread_after_ramp = False
        """Move the users' connections once the first ramp is done (set at open with 2+ workers)."""
        self._health = HealthWatcher()
        self._confirmations: dict[str, str] = {}
        self._open_failure: str | None = None
        self.closed = False
        self.slos = tuple(slos)
        """`--slo`: checked against every segment at the end, unless a sweep gives a verdict."""
        self.verdict: verdict.Verdict | None = None
        """A sweep's verdict, set by its PlanRunner when the plan ends."""
        self.plan_results: list[verdict.StepResult] = []
        self._rebalancing = threading.Event()
        self._db_died = threading.Event()
        self._cancel = threading.Event()
        self._told_rejected = False
        self._refused_workers = 0
        self.listener: StatsListener | None = None
        """`--stats-listen`'s receiver, while it runs."""
        self._remote_seen: set[str] = set()
        """Set by :meth:`abort`: long waits (an app that never gets ready) give up so the session can close."""
        self._keeper: threading.Thread | None = None

    # -- subscribers -------------------------------------------------------------------------------------------

    def subscribe(self, on_tick: TickCallback | None = None, on_event: EventCallback | None = None) -> None:
        """Add front-end callbacks (called from the session's threads)."""
        if on_tick:
            self._tick_callbacks.append(on_tick)
        if on_event:
            self._event_callbacks.append(on_event)

    @property
    def elapsed(self) -> float:
        """Seconds since the session started."""
        return time.monotonic() - self._started

    def event(self, kind: EventKind, message: str, **data: Any) -> Event:
        """Record an event and tell the front ends."""
        ev = Event(t=round(self.elapsed, 3), kind=kind, message=message, data=data)
        self.events.append(ev)
        self._diagnoser.note(kind, ev.t, message, restarted=bool(data.get("restarted")))
        if self.recorder is not None:
            self.recorder.event(ev)
        for cb in self._event_callbacks:
            cb(ev)
        return ev

    # -- opening -----------------------------------------------------------------------------------------------

    def open(self, progress: Callable[[str], object] | None = None) -> None:
        """Start the database, the app and the load generator, and begin ticking.

        Raises UsageError (bad input, exit 2) or RunFailed (exit 1); whatever was started is stopped again.
        """
        say = progress or (lambda _msg: None)
        cfg = self.config
        if cfg.locustfile is None:
            scenario(cfg.scenario)
        swept = stale.sweep(self._state_dir or default_state_dir())
        self.recorder = Recorder(self.record_path, unique=cfg.record is None, on_error=self._record_failed)
        self.record_path = self.recorder.path
        self.recorder.header(cfg, self._started_at, {"record_path": str(self.record_path)})
        say(f"recording to {self.record_path}")
        if swept:
            say(f"removed {len(swept)} temporary directories of sessions that were killed")
        self.guardian.start()
        self.guardian.remove_on_exit(self.run_dir)
        try:
            self._open_listener(say)
            self._open_database(say)
            self._open_app(say)
            if self.config.probe and self.target_url is not None:
                self.prober = Prober(self.target_url)
                self.prober.start()
            self._open_loadgen(say)
        except BaseException:
            self._shutdown_children()
            self._discard_record()
            raise
        self.event("session-started", f"session started; recording to {self.record_path}", config=cfg.to_dict())
        self._tick_thread = threading.Thread(target=self._tick_loop, name="loadtui-ticks", daemon=True)
        self._tick_thread.start()
        self._spread_after_ramp = (
            cfg.rebalance and cfg.workers >= 2 and cfg.users >= 2 * cfg.workers and not cfg.open_model
        )
        if cfg.open_model:
            self.loadgen.drive(cfg)  # type: ignore[union-attr]
            self.event(
                "first-step",
                f"load by arrival rate: {cfg.rate:g} req/s ({cfg.arrivals}), at most {cfg.max_in_flight} in flight; "
                "latency counts from each arrival's intended start",
                users=0,
            )
        elif cfg.users > 0:
            first = max(1, cfg.workers)
            if first * 2 <= cfg.users:
                with self._first_step_lock:
                    self._first_step_until = self.elapsed + FIRST_STEP_S
                self.loadgen.set_users(first, float(first))  # type: ignore[union-attr]
                self.event(
                    "first-step",
                    f"first {FIRST_STEP_S:g} s at {first} user(s), one per worker — what a request costs without a "
                    f"queue — then {cfg.users} users at {cfg.spawn_rate:g}/s",
                    users=first,
                )
            else:
                self.loadgen.set_users(cfg.users, cfg.spawn_rate)  # type: ignore[union-attr]

    def _spread_first_ramp(self, tick: Tick) -> None:
        """Once every user of the first ramp runs, spread their connections over the workers, as after a change.

        A shared listening socket hands new connections to whichever worker wakes first, often the busiest: one
        worker may get nearly all of them (small_pool, 2 workers: CPU 9% / 1%), and the figures then measure that
        spread rather than the app.
        """
        if self._spread_after_ramp and self._first_step_until is None and tick.users >= self.config.users:
            self._spread_after_ramp = False
            self.start_rebalance("the first ramp")

    def _end_first_step(self, *, now: bool = False) -> None:
        """Once the first step is over (or `now`, a change cuts it short), ramp to the users asked for."""
        with self._first_step_lock:
            if self._first_step_until is None or (not now and self.elapsed < self._first_step_until):
                return
            self._first_step_until = None
            if self.loadgen is not None and not self.paused and self.config.users > 0:
                self.loadgen.drive(self.config)

    def _record_failed(self, why: str) -> None:
        """Writing the log failed (a full disk): say so once; the session goes on measuring and showing."""
        self.event("record-failed", why)

    def _discard_record(self) -> None:
        """A run that never started leaves no session log behind: it would hold nothing but its own header."""
        if self.recorder is not None and self.tick_count == 0:
            self.recorder.close()
            self.record_path.unlink(missing_ok=True)
            self.recorder = None

    def _open_listener(self, say: Callable[[str], object]) -> None:
        """`--stats-listen`: receive the figures of workers loadtui did not start."""
        if self.config.stats_listen is None:
            return
        token = os.environ.get(STATS_TOKEN_ENV) or None
        host, port = parse_listen(self.config.stats_listen, token)
        self.listener = StatsListener(host, port, token)
        self.listener.start()
        self._builder.remote = self.listener
        say(f"listening for workers' figures on udp://{host}:{port}" + (" (signed only)" if token else ""))

    def _open_database(self, say: Callable[[str], object]) -> None:
        cfg = self.config
        if cfg.host is not None:
            if cfg.dsn is not None:
                check_dsn(cfg.dsn)
                self.limits = read_limits(cfg.dsn)
            return
        if cfg.dsn is not None:
            say("checking the database")
            check_dsn(cfg.dsn)
            self.limits = read_limits(cfg.dsn)
        else:
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
            self.event(
                "db-started",
                f"embedded PostgreSQL ready in {self.database.start_seconds:.2f} s",
                max_connections=self.limits.max_connections,
                start_seconds=round(self.database.start_seconds or 0, 3),
            )
        if self.limits is not None:
            check_pool_fits(cfg, self.limits.for_ordinary_roles)
            reserved = self.limits.max_connections - self.limits.for_ordinary_roles
            self._builder.db = DbCollector(self.admin_dsn or "", reserved=reserved)

    def _open_app(self, say: Callable[[str], object]) -> None:
        cfg = self.config
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
        self.app = AppSupervisor(run_dir=self.run_dir, guardian=self.guardian, cancel=self._cancel)
        try:
            self.app.start(cfg, self.dsn, say)
        except AppStartError as exc:
            raise RunFailed(str(exc)) from None
        self.target_url = self.app.url
        self._health.app_started(self.app.worker_pids())
        self.event(
            "app-started",
            f"app ready on {self.app.url} with {cfg.workers} worker(s)",
            url=self.app.url,
            workers=self.app.worker_pids(),
        )

    def _loadgen_for(self, cfg: RunConfig) -> LoadGen:
        assert self.target_url is not None
        locustfile = Path(cfg.locustfile) if cfg.locustfile else bundled_locustfile()
        user_classes = [scenario(cfg.scenario).user_class] if cfg.locustfile is None else []
        remote = cfg.expect_remote_workers
        return LoadGen(
            host=self.target_url,
            locustfile=locustfile,
            scenario=cfg.scenario if cfg.locustfile and cfg.scenario_given else None,
            user_classes=user_classes,
            processes=cfg.loadgen_process_count(),
            master_bind=cfg.master_bind,
            expect_remote_workers=remote,
            guardian=self.guardian,
            on_stats=self._stats_queue.put,
            stderr_path=self.run_dir / "loadgen.log",
        )

    def _open_loadgen(self, say: Callable[[str], object]) -> None:
        cfg = self.config
        say("starting the load generator")
        self.loadgen = self._loadgen_for(cfg)
        try:
            self.loadgen.start()
        except LoadGenError as exc:
            raise RunFailed(f"the load generator did not start: {exc}") from None
        self.event(
            "loadgen-started",
            f"load generator ready ({cfg.loadgen_process_count()} process(es))",
            pids=self.loadgen.pids,
            master_port=self.loadgen.master_port,
        )

    # -- control (call from the thread that opened the session) ------------------------------------------------

    def _new_segment(self, cfg: RunConfig, reason: str, kind: EventKind = "config", **data: Any) -> None:
        """Start a segment: one event says what changed and carries the new segment and configuration."""
        self._end_first_step(now=True)
        self._spread_after_ramp = False  # a change spreads the connections itself when it needs to
        self._segment += 1
        self._segment_configs[self._segment] = cfg
        self.event(kind, reason, segment=self._segment, config=cfg.to_dict(), **data)

    @property
    def segment(self) -> int:
        """The index of the configuration segment running now."""
        return self._segment

    @property
    def rebalancing(self) -> bool:
        """True while the users' connections are being spread over the workers (figures are not steady yet)."""
        return self._rebalancing.is_set()

    def change(self, progress: Callable[[str], object] | None = None, **changes: Any) -> None:
        """Apply several settings as one step, one segment: live where possible (users, workers), else by restart."""
        new = self.config.replace(**changes)
        if new == self.config:
            return
        live = {"users", "spawn_rate", "rate", "arrivals", "max_in_flight"}
        if self.app is not None and self.app.supports_live_workers:
            live.add("workers")
        differ = set(_changed(self.config, new))
        if not differ <= live:
            self.apply(self.propose(**changes), progress=progress)
            return
        moved: dict[str, Any] = {}
        if new.workers != self.config.workers:
            moved = self._change_workers_live(new)
        if self.loadgen is not None and not self.paused and _load_changed(self.config, new):
            self.loadgen.drive(new)
        self.config = new
        self.propose(**changes)
        reason = describe_change(changes)
        if moved:  # the worker change says how long it took; the rest of the step follows it
            rest = describe_change({k: v for k, v in changes.items() if k != "workers"})
            reason = str(moved.pop("message")) + (f", {rest}" if rest else "")
        self._new_segment(new, reason, "workers" if moved else "config", **moved)
        if "workers" in differ:
            self.start_rebalance(f"workers → {new.workers}")

    def set_users(self, users: int, spawn_rate: float | None = None) -> None:
        """Change the number of simulated users (live)."""
        users = max(0, users)
        rate = spawn_rate if spawn_rate is not None else self.config.spawn_rate
        self.config = self.config.replace(users=users, spawn_rate=rate)
        self.propose(users=users, spawn_rate=rate)
        if self.loadgen is not None and not self.paused:
            self.loadgen.set_users(users, rate)
        self._new_segment(self.config, f"users → {users}")

    def set_rate(self, rate: float) -> None:
        """Change the arrival rate (live; the open model only)."""
        rate = max(0.0, rate)
        self.config = self.config.replace(rate=rate)
        self.propose(rate=rate)
        if self.loadgen is not None and not self.paused:
            self.loadgen.drive(self.config)
        self._new_segment(self.config, f"rate → {rate:g} req/s")

    def set_paused(self, paused: bool) -> None:
        """Pause or resume; asking for the state it is already in does nothing (keys pressed twice while a restart
        runs arrive as two requests: the last one wins, and pause and resume always pair)."""
        if paused and not self.paused:
            self.pause()
        elif not paused and self.paused:
            self.resume()

    def pause(self) -> None:
        """Stop all users; :meth:`resume` starts them again."""
        if self.paused:
            return
        self.paused = True
        self._end_first_step(now=True)  # no ramp after the pause: resume starts every user
        if self.loadgen is not None:
            self.loadgen.stop_users()
        self.event("paused", "load paused")

    def resume(self) -> None:
        """Start the users again after :meth:`pause`."""
        if not self.paused:
            return
        self.paused = False
        if self.loadgen is not None and self.config.has_load:
            self.loadgen.drive(self.config)
        self._new_segment(self.config, "load resumed", "resumed")
        self.start_rebalance("resume")

    def set_workers(self, workers: int) -> None:
        """Change the app's worker count: live by signal where the app supports it, else by restart."""
        if self.app is None:
            raise UsageError("the app is not run by loadtui (--host); its workers cannot change")
        new = self.config.replace(workers=workers)
        if self.limits is not None:
            check_pool_fits(new, self.limits.for_ordinary_roles)
        if not self.app.supports_live_workers:
            self.apply(self.propose(workers=workers))
            return
        moved = self._change_workers_live(new)
        self.config = new
        self.propose(workers=workers)
        self._new_segment(self.config, str(moved.pop("message")), "workers", **moved)
        self.start_rebalance(f"workers → {workers}")

    def _change_workers_live(self, new: RunConfig) -> dict[str, Any]:
        """Add or remove workers by signal; returns what the `workers` event says (the caller starts the segment)."""
        assert self.app is not None
        workers = new.workers
        if self.limits is not None:
            check_pool_fits(new, self.limits.for_ordinary_roles)
        before = self.app.worker_pids()
        with self._change():
            if workers < len(before) and self.loadgen is not None:
                self.loadgen.draining(DRAIN_SECONDS)
            try:
                seconds = self.app.set_workers(workers)
            except AppStartError as exc:
                self.event("error", f"worker change failed: {exc}")
                raise RunFailed(str(exc)) from None
            self._health.app_started(self.app.worker_pids())
        return {
            "message": f"workers {len(before)} → {workers} in {seconds:.2f} s (live)",
            "workers": workers,
            "seconds": round(seconds, 3),
            "pids": sorted(self._health.known_workers),
        }

    def propose(self, **changes: Any) -> RunConfig:
        """Record a change without applying it (a key press, before its job runs or `a` applies it).

        Cheap and safe from any thread: the dashboard calls it from its own, so fast key presses add up.
        """
        with self._pending_lock:
            self.pending = self.pending.replace(**changes)
            return self.pending

    def would_apply(self, config: RunConfig) -> bool:
        """True when applying `config` would do something: a setting differs, or the app or load generator exited."""
        app_dead = self.app is not None and not self.app.alive
        loadgen_dead = self.loadgen is not None and not self.loadgen.alive
        return config != self.config or app_dead or loadgen_dead

    def apply(self, config: RunConfig | None = None, progress: Callable[[str], object] | None = None) -> None:
        """Apply `config` (default: the pending one): restart the app and/or the load generator as needed.

        On failure the old configuration stays the applied one, the error is an event, and RunFailed is raised
        with the app's own words; the user can fix the setting and apply again.
        """
        say = progress or (lambda _msg: None)
        new = config or self.pending
        new.validate()
        if self.limits is not None:
            check_pool_fits(new, self.limits.for_ordinary_roles)
        old = self.config
        app_dead = self.app is not None and not self.app.alive
        loadgen_dead = self.loadgen is not None and not self.loadgen.alive
        restart_app = bool(new.needs_restart(old)) or new.workers != old.workers or app_dead
        restart_loadgen = new.scenario != old.scenario or loadgen_dead
        with self._change():
            if restart_app and self.app is not None:
                say("restarting the app")
                why = "it had exited" if app_dead else ", ".join(new.needs_restart(old)) or "workers"
                self.event(
                    "restart",
                    f"restarting the app: {why}",
                    changes={k: getattr(new, k) for k in new.needs_restart(old)},
                )
                if self.loadgen is not None:
                    self.loadgen.stop_users()
                try:
                    self.app.restart(new, self.dsn, say)
                except AppStartError as exc:
                    self.event("restart-failed", str(exc), log_tail=self.app.log_tail())
                    self.pending = new
                    raise RunFailed(str(exc)) from None
                self._health.app_started(self.app.worker_pids())
            if restart_loadgen and self.loadgen is not None:
                say("restarting the load generator")
                self.loadgen.stop()
                self.loadgen = self._loadgen_for(new)
                try:
                    self.loadgen.start()
                except LoadGenError as exc:
                    self.event("error", f"load generator: {exc}")
                    raise RunFailed(str(exc)) from None
                self._health.loadgen_started()
            self.config = new
            self.pending = new
            if self.loadgen is not None and not self.paused and new.has_load:
                self.loadgen.drive(new)
        changed = [describe_change({f: getattr(new, f)}) for f in _changed(old, new)]
        self._new_segment(new, "configuration applied: " + (", ".join(changed) or "restarted as it was"), "applied")
        if restart_app:
            self.start_rebalance("restart")

    # -- spreading the load over the workers ---------------------------------------------------------------------

    def start_rebalance(self, reason: str, delay: float = 0.0) -> None:
        """Move the users' connections so every worker gets its share, in the background; records `rebalanced`.

        `delay`: seconds to wait first (a worker the supervisor just started is still importing the app).
        """
        if not self.config.rebalance or self.app is None or self.app.port is None or self.loadgen is None:
            return
        if self.paused or not self.config.has_load or len(self.app.worker_pids()) < 2:
            return
        self._rebalancing.set()
        thread = threading.Thread(target=self._rebalance, args=(reason, delay), name="loadtui-rebalance", daemon=True)
        thread.start()

    def _rebalance(self, reason: str, delay: float) -> None:
        try:
            if not self._stop.wait(delay):
                self._spread(reason)
        finally:
            self._rebalancing.clear()

    def _spread(self, reason: str) -> None:
        app, loadgen = self.app, self.loadgen
        if app is None or app.port is None or loadgen is None:
            return
        port = app.port
        done = rebalance.spread(
            connections=lambda: rebalance.connections_by_worker(app.worker_pids(), port),
            move=lambda ports, spread_s, fraction: loadgen.reconnect(ports, spread_s, fraction),
            users=self.ticks[-1].users if self.config.open_model and self.ticks else self.config.users,
            stop=self._stop,
        )
        self._rebalancing.clear()  # the connections are where they belong: figures from now on are steady
        if done is None:
            return
        settled = self.tick_count + 3  # three whole seconds on the new connections
        while self.tick_count < settled:
            if self._stop.wait(0.1):
                return
        shares = rebalance.shares(list(self.ticks)[-3:])
        if len(shares) < 2:
            return  # another change replaced the workers meanwhile: it spreads the load itself
        text = " / ".join(f"{s:.0%}" for s in shares.values())
        self.event(
            "rebalanced",
            f"load spread over {len(shares)} workers after {reason}: {text} of the work"
            + ("" if rebalance.within(shares) else " (still uneven)"),
            shares={str(pid): s for pid, s in shares.items()},
            connections={str(pid): n for pid, n in done.connections.items()},
            moved=done.moved,
            rounds=done.rounds,
            seconds=round(done.seconds, 2),
            even=rebalance.within(shares),
        )

    MAX_DUMPS = 4
    """Workers dumped per confirmation (the busiest first): each dump pauses its worker for a few milliseconds."""

    def confirm(self) -> str:
        """Confirm the active findings with a py-spy dump of the busiest workers; attach, record and return it.

        Raises RunFailed with a one-line reason when py-spy cannot read the workers (no ptrace permission...).
        """
        tick = self.ticks[-1] if self.ticks else None
        # Only this machine's workers: a remote row's pid names some other process here (and is the sender's word).
        workers = sorted((w for w in tick.workers if w.host is None), key=lambda w: -w.cpu_percent) if tick else []
        if not workers:
            raise RunFailed("no app workers to dump (the app is not running, or loadtui does not run it)")
        findings = [f.id for f in tick.findings] if tick else []
        parts: list[str] = []
        per_worker: dict[str, list[str]] = {}
        for w in workers[: self.MAX_DUMPS]:
            try:
                lines = stacks.sample(w.pid, cpu_percent=w.cpu_percent)
            except stacks.StackDumpError as exc:
                self.event("confirmation-failed", str(exc), findings=findings)
                raise RunFailed(str(exc)) from None
            per_worker[str(w.pid)] = lines
            parts.append(f"worker {w.pid}: " + "; ".join(lines[:3]))
        text = " | ".join(parts)
        for fid in findings:
            self._confirmations[fid] = text
        self.event("confirmation", f"py-spy: {text}", findings=findings, workers=per_worker)
        return text

    def mark(self, note: str) -> None:
        """Put a note on the timeline."""
        self.event("mark", note or "mark", note=note)

    # -- ticking -----------------------------------------------------------------------------------------------

    def _tick_loop(self) -> None:
        psutil.cpu_percent(None)  # prime the machine-wide counter
        while not self._stop.is_set():
            try:
                record: dict[str, Any] | None = self._stats_queue.get(timeout=TICK_TIMEOUT)
            except queue.Empty:
                record = None
            if self._stop.is_set():
                break
            # Drain: if records piled up (a slow second), use the newest, never fall behind.
            while not self._stats_queue.empty():
                try:
                    record = self._stats_queue.get_nowait()
                except queue.Empty:
                    break
            try:
                tick = self.collect(record)
            except Exception as exc:  # a bug in a collector must not end the session silently
                self.event("error", f"collection failed: {type(exc).__name__}: {exc}")
                continue
            self.ticks.append(tick)
            self.tick_count += 1
            self._requests += tick.rps
            self._failures += tick.fail_rps
            if self.recorder is not None:
                self.recorder.tick(tick)
            self._end_first_step()
            if self.tick_count % LOG_CHECK_TICKS == 0:
                for log in ("app.log", "loadgen.log"):
                    logfiles.cap(self.run_dir / log)  # a chatty app's output must not fill the disk
            self._spread_first_ramp(tick)
            for cb in self._tick_callbacks:
                cb(tick)

    def _running(self) -> Running:
        return Running(
            app=self.app,
            loadgen=self.loadgen,
            expected_workers=self.config.workers,
            loadgen_cores=self.config.loadgen_process_count(),
            changing=self._changing.is_set(),
            segment=self._segment,
            probe=self.prober,
        )

    def collect(self, record: dict[str, Any] | None) -> Tick:
        """This second's Tick: measured by the builder, watched for crashes, diagnosed."""
        tick = self._builder.measure(round(self.elapsed, 3), record)
        self._watch(self._builder.workers)
        self._check_locust_workers(record)
        self._follow_remote(tick)
        stats = self._builder.appstats
        if stats.rejected and not self._told_rejected:
            self._told_rejected = True
            self.event(
                "error",
                f"dropped a malformed stats record ({stats.last_rejected}); bad records are counted in the "
                "summary and measuring goes on",
            )
        active, started, ended = self._diagnoser.update(tick, self.config)
        for finding in started:
            self.event(
                "finding-started",
                finding.title,
                id=finding.id,
                severity=finding.severity,
                evidence=finding.evidence,
                signals=finding.signals,
                advice=finding.advice,
                consequence_of=finding.consequence_of,
            )
        for fid in ended:
            self.event("finding-ended", f"{fid} ended", id=fid)
            self._confirmations.pop(fid, None)
        active = [
            dataclasses.replace(f, confirmation=self._confirmations[f.id]) if f.id in self._confirmations else f
            for f in active
        ]
        return dataclasses.replace(tick, findings=active)

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
                self.event("error", f"embedded PostgreSQL did not come back: {exc}")
                continue
            self.event("db-started", f"embedded PostgreSQL restarted in {seconds:.2f} s after it died", restarted=True)

    def _follow_remote(self, tick: Tick) -> None:
        """Say when a remote worker starts reporting and when it is gone."""
        if self.listener is None:
            return
        now = {w.name for w in tick.workers if w.host}
        for name in sorted(now - self._remote_seen):
            self.event("worker-started", f"remote worker {name} reporting", worker=name)
        for name in sorted(self._remote_seen - now):
            self.event("worker-exited", f"remote worker {name} silent for {remote.GONE_S:.0f} s: gone", worker=name)
        self._remote_seen = now

    def _check_locust_workers(self, record: dict[str, Any] | None) -> None:
        """Anyone who reaches the load generator's master port can try to join it: say so when someone it does not
        expect did (it was refused, and none of its messages reached the figures)."""
        cfg = self.config
        refused = record.get("refused_workers") if record is not None else None
        if not isinstance(refused, int) or refused <= self._refused_workers:
            return
        self._refused_workers = refused
        dropped = record.get("dropped_messages") if record is not None else None
        where = (
            f"beyond the {cfg.expect_remote_workers} expected at --master-bind {cfg.master_bind}: a host that reached "
            "the port tried to join. Bind to a private address or firewall the port"
            if cfg.master_bind is not None
            else "without this session's secret: another program on this machine reached the load generator's port"
        )
        self.event(
            "error",
            f"refused {refused} Locust worker(s) {where}; their messages ({dropped or 0} dropped) never reach the "
            "figures",
            refused=refused,
            dropped=dropped,
        )

    def _watch(self, workers: list[int]) -> None:
        """Tell the health watcher what this second shows; record what it reports."""
        if self.database is not None and not self.database.alive and not self._stop.is_set():
            self._db_died.set()
        app_alive = None
        if self.app is not None and self.app.config is not None:
            app_alive = self.app.alive
        seen = Observation(
            changing=self._changing.is_set(),
            app_alive=app_alive,
            app_status=self.app.exit_status if self.app is not None else None,
            workers=tuple(workers),
            loadgen_alive=self.loadgen.alive if self.loadgen is not None and self.loadgen.pids else None,
            loadgen_error=self.loadgen.error if self.loadgen is not None else None,
            db_error=self._builder.db.last_error if self._builder.db is not None else None,
            has_db=self._builder.db is not None,
        )
        for notice in self._health.observe(seen):
            data = dict(notice.data)
            if notice.kind == "app-exited" and self.app is not None:
                data["log_tail"] = self.app.log_tail()
                # Workers whose supervisor died would serve on, unmanaged: stop them (off the tick thread).
                threading.Thread(target=self.app.stop, name="loadtui-app-cleanup", daemon=True).start()
            self.event(notice.kind, notice.message, **data)
            if notice.kind == "worker-started":
                # The supervisor replaced a worker that died: the users' connections stay on the survivors until
                # they are moved, and the new worker would idle beside a pinned one.
                self.start_rebalance(f"worker {data.get('pid')} replaced a dead one", delay=REPLACED_WORKER_READY_S)

    @contextlib.contextmanager
    def _change(self) -> Iterator[None]:
        """One change at a time; while it runs, processes that come and go are not crashes."""
        with self._busy:
            self._changing.set()
            try:
                yield
            finally:
                self._changing.clear()

    @property
    def failed(self) -> str | None:
        """Why the run failed (the app never got ready, it or the load generator died), for exit status 1."""
        return self._open_failure or self._health.failed

    # -- closing -----------------------------------------------------------------------------------------------

    def segments(self) -> list[Segment]:
        """The session's configuration segments so far."""
        if self.recorder is not None and self.recorder.error is None and self.tick_count > len(self.ticks):
            from loadtui.results.recorder import read_ticks

            try:
                # Every line is flushed: the log holds every second. Streamed, so memory stays flat.
                return segments.split(read_ticks(self.record_path), self._segment_configs, events=self.events)
            except UsageError:
                pass  # the file went away: summarize the recent seconds
        return segments.split(self.ticks, self._segment_configs, events=self.events)

    def summary(self) -> Summary:
        """Totals and one row per configuration segment."""
        segs = self.segments()
        best = segments.best(segs)
        findings: list[str] = []
        for ev in self.events:
            fid = ev.data.get("id")
            if ev.kind == "finding-started" and fid not in findings:
                findings.append(str(fid))
        return Summary(
            t=round(self.elapsed, 3),
            seconds=self.tick_count,
            requests=round(self._requests),
            failures=round(self._failures),
            segments=segs,
            best_segment=best.index if best else None,
            findings=findings,
            failed=self.failed,
            verdict=self.verdict,
            plan=list(self.plan_results),
            slo_checks=verdict.check(segs, self.slos) if self.slos and self.verdict is None else [],
            stats_rejected=self._builder.appstats.rejected,
            remote_dropped=self.listener.dropped if self.listener else 0,
        )

    def _shutdown_children(self) -> None:
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

    def abort(self) -> None:
        """Make a change under way give up at once (from any thread): loadtui is quitting, then calls :meth:`close`."""
        self._cancel.set()

    def close(self) -> Summary | None:
        """Stop everything the session started; write the summary; return it."""
        if self.closed:
            return None
        self.closed = True
        self._stop.set()
        if self._tick_thread is not None:
            self._tick_thread.join(3)
        if self._keeper is not None:
            self._keeper.join(DB_REVIVE_S)
        summary = None
        if self.recorder is not None and self.ticks:
            summary = self.summary()
        self._shutdown_children()
        if self.recorder is not None:
            if summary is not None:
                self.recorder.summary(summary.to_dict())
            self.recorder.close()
        shutil.rmtree(self.run_dir, ignore_errors=True)
        self._run_lock.close()
        return summary


def _changed(old: RunConfig, new: RunConfig) -> list[str]:
    """The fields that differ between two configurations."""
    return [f.name for f in dataclasses.fields(new) if getattr(new, f.name) != getattr(old, f.name)]


def should_confirm(event: Event) -> bool:
    """True for an event after which the workers' stacks are worth a look: a warning or critical finding started that
    is not the consequence of another (its cause's stacks already say it)."""
    return (
        event.kind == "finding-started"
        and event.data.get("severity") in ("warning", "critical")
        and not event.data.get("consequence_of")
    )


def _load_changed(old: RunConfig, new: RunConfig) -> bool:
    return any(getattr(old, f) != getattr(new, f) for f in ("users", "spawn_rate", "rate", "arrivals", "max_in_flight"))


def describe_change(changes: dict[str, Any]) -> str:
    """A `config` event's reason for a step of several changes: `workers → 2, users → 40`."""
    return ", ".join(f"{k.replace('_', ' ')} → {v}" for k, v in changes.items())
