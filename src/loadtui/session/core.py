"""The session: the headless core that starts everything, measures once a second and records it (DESIGN 2).

A :class:`Session` is a thin front over collaborators with one job each, which front ends use directly:
`session.changes` to change users, rate, workers and settings (live or by restart), `session.children` for what
runs (app, load generator, database, listener), `session.shaper` for the load's shape, `session.ledger` for
segments. Front ends (the dashboard, headless mode, tests) give it callbacks for ticks and events. It never imports
Textual.

Threads: the thread that calls :meth:`Session.open` and the control methods starts child processes, so it must live
as long as the session (children get a parent-death signal tied to it). Ticks are built by the session's own tick
thread, paced by the load generator's per-second records, so collection never overlaps itself.
"""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import psutil

from loadtui.config import RunConfig, scenario
from loadtui.diagnose import Diagnoser
from loadtui.measure.ticks import Running, TickBuilder
from loadtui.model import Event, EventKind, Tick
from loadtui.procs import stale
from loadtui.procs.processes import Guardian
from loadtui.results import verdict
from loadtui.results.recorder import Recorder, default_path
from loadtui.results.segments import Segment
from loadtui.results.summary import Summary
from loadtui.session.changes import Changes
from loadtui.session.children import Children
from loadtui.session.health import HealthWatcher
from loadtui.session.ledger import Ledger
from loadtui.session.meter import Meter
from loadtui.session.shaping import LoadShaper
from loadtui.session.watch import Watchman
from loadtui.stack.database import default_state_dir

__all__ = ["Session"]

TickCallback = Callable[[Tick], object]
EventCallback = Callable[[Event], object]

RECENT_TICKS = 120
"""Ticks kept in memory; the segment summary is computed from the session log, which holds every tick."""

DB_REVIVE_S = 30.0
"""At close, how long to wait for a restart of the embedded server that is under way."""

LOG_CHECK_TICKS = 10
"""Every this many seconds the children's logs are checked against their size cap (logfiles.py)."""


class Session:
    """One run of loadtui, from :meth:`open` to :meth:`close`: wires the collaborators, measures one second at a
    time (:class:`.Meter`) and records it."""

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
        self._tick_callbacks: list[TickCallback] = [on_tick] if on_tick else []
        self._event_callbacks: list[EventCallback] = [on_event] if on_event else []
        self._state_dir = state_dir
        self.record_path = Path(config.record) if config.record else default_path(config)
        self.recorder: Recorder | None = None
        self.run_dir = Path(tempfile.mkdtemp(prefix="loadtui-run-"))
        self._run_lock = stale.hold(self.run_dir)
        """Held while the session lives: a later start sweeps run directories whose lock is free (stale.py)."""
        self.guardian = Guardian()
        self._builder = TickBuilder(self.run_dir / "appstats", self._running)
        self._diagnoser = Diagnoser()
        self._started = time.monotonic()
        self._started_at = dt.datetime.now(dt.UTC)
        self._stop = threading.Event()
        self._cancel = threading.Event()
        """Set by :meth:`abort`: long waits (an app that never gets ready) give up so the session can close."""
        self._tick_thread: threading.Thread | None = None
        self.ledger = Ledger(config)
        self.ticks: deque[Tick] = deque(maxlen=recent_ticks)
        """The most recent ticks (bounded: memory stays flat however long the session; the log has them all)."""
        self.events: list[Event] = []
        self._health = HealthWatcher()
        self.closed = False
        self.slos = tuple(slos)
        """`--slo`: checked against every segment at the end, unless a sweep gives a verdict."""
        self.children = Children(
            run_dir=self.run_dir, guardian=self.guardian, state_dir=state_dir, builder=self._builder,
            health=self._health, event=self.event, on_stats=lambda r: self.meter.records.put(r), cancel=self._cancel,
            stop=self._stop, dsn=config.dsn,
        )  # fmt: skip
        self.shaper = LoadShaper(
            config=lambda: self.changes.config, paused=lambda: self.changes.paused, app=lambda: self.children.app,
            loadgen=lambda: self.children.loadgen, event=self.event, stop=self._stop,
        )  # fmt: skip
        self.changes = Changes(
            config, children=self.children, shaper=self.shaper, health=self._health, event=self.event,
            new_segment=self._new_segment,
        )  # fmt: skip
        watch = Watchman(
            health=self._health, children=self.children, builder=self._builder, event=self.event,
            changing=self.changes.changing, stop=self._stop, rebalance=self.shaper.start_rebalance,
        )  # fmt: skip
        self.meter = Meter(
            builder=self._builder, watch=watch, diagnoser=self._diagnoser, event=self.event, cancel=self._cancel
        )

    # -- what the front ends read ------------------------------------------------------------------------------

    @property
    def config(self) -> RunConfig:
        """The configuration applied now."""
        return self.changes.config

    @property
    def tick_count(self) -> int:
        """Seconds measured so far."""
        return self.ledger.seconds

    @property
    def failed(self) -> str | None:
        """Why the run failed (the app never got ready, it or the load generator died)."""
        return self._health.failed

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

    # -- opening and closing -----------------------------------------------------------------------------------

    def open(self, progress: Callable[[str], object] | None = None) -> None:
        """Start the database, the app and the load generator, and begin ticking.

        Raises UsageError (bad input, exit 2) or RunFailed (exit 1); whatever was started is stopped again.
        """
        say = progress or (lambda _msg: None)
        cfg = self.config
        if cfg.locustfile is None:
            scenario(cfg.scenario)
        swept = stale.sweep(self._state_dir or default_state_dir())
        # writing the log failing (a full disk) is said once; the session goes on measuring and showing
        self.recorder = Recorder(
            self.record_path, unique=cfg.record is None, on_error=lambda why: self.event("record-failed", why)
        )
        self.record_path = self.recorder.path
        self.recorder.header(cfg, self._started_at, {"record_path": str(self.record_path)})
        say(f"recording to {self.record_path}")
        if swept:
            say(f"removed {len(swept)} temporary directories of sessions that were killed")
        self.guardian.start()
        self.guardian.remove_on_exit(self.run_dir)
        try:
            self.children.open(cfg, say)
        except BaseException:
            self.children.shutdown()
            self._discard_record()
            raise
        self.event("session-started", f"session started; recording to {self.record_path}", config=cfg.to_dict())
        self._tick_thread = threading.Thread(target=self._tick_loop, name="loadtui-ticks", daemon=True)
        self._tick_thread.start()
        assert self.children.loadgen is not None
        self.shaper.start(cfg, self.children.loadgen)

    def _discard_record(self) -> None:
        """A run that never started leaves no session log behind: it would hold nothing but its own header."""
        if self.recorder is not None and self.tick_count == 0:
            self.recorder.close()
            self.record_path.unlink(missing_ok=True)
            self.recorder = None

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
        self.children.join_keeper(DB_REVIVE_S)
        summary = self.summary() if self.recorder is not None and self.ticks else None
        self.children.shutdown()
        if self.recorder is not None:
            if summary is not None:
                self.recorder.summary(summary.to_dict())
            self.recorder.close()
        shutil.rmtree(self.run_dir, ignore_errors=True)
        self._run_lock.close()
        return summary

    # -- control (call from the thread that opened the session) ------------------------------------------------

    def _new_segment(self, cfg: RunConfig, reason: str, kind: EventKind = "config", **data: Any) -> None:
        """Start a segment: one event says what changed and carries the new segment and configuration."""
        self.shaper.changed()
        segment = self.ledger.new_segment(cfg)
        self.event(kind, reason, segment=segment, config=cfg.to_dict(), **data)

    def sweep_ended(self, result: verdict.Verdict, steps: list[verdict.StepResult], message: str) -> None:
        """A sweep's plan ended: its verdict and steps go into the summary, and the event says who won."""
        self.ledger.verdict, self.ledger.plan_results = result, steps
        self.event("verdict", message, verdict=result.to_dict())

    def confirm(self) -> str:
        """Confirm the active findings with a py-spy dump of the busiest workers (:meth:`Meter.confirm`)."""
        return self.meter.confirm(self.ticks[-1] if self.ticks else None)

    def mark(self, note: str) -> None:
        """Put a note on the timeline."""
        self.event("mark", note or "mark", note=note)

    # -- ticking -----------------------------------------------------------------------------------------------

    def _tick_loop(self) -> None:
        psutil.cpu_percent(None)  # prime the machine-wide counter
        while not self._stop.is_set():
            record = self.meter.next_record()
            if self._stop.is_set():
                break
            try:
                tick = self.meter.second(self.elapsed, record, self.config)
            except Exception as exc:  # a bug in a collector must not end the session silently
                self.event("error", f"collection failed: {type(exc).__name__}: {exc}")
                continue
            self.ticks.append(tick)
            self.ledger.count(tick)
            if self.recorder is not None:
                self.recorder.tick(tick)
            if self.tick_count % LOG_CHECK_TICKS == 0:
                self.children.cap_logs()
            self.shaper.on_tick(tick)
            for cb in self._tick_callbacks:
                cb(tick)

    def _running(self) -> Running:
        return Running(
            app=self.children.app,
            loadgen=self.children.loadgen,
            expected_workers=self.config.workers,
            loadgen_cores=self.config.loadgen_process_count(),
            changing=self.changes.changing.is_set(),
            segment=self.ledger.segment,
            probe=self.children.prober,
        )

    # -- results -----------------------------------------------------------------------------------------------

    def segments(self) -> list[Segment]:
        """The session's configuration segments so far."""
        readable = self.recorder is not None and self.recorder.error is None
        return self.ledger.segments(self.record_path if readable else None, self.ticks, self.events)

    def summary(self) -> Summary:
        """Totals and one row per configuration segment."""
        return self.ledger.summary(
            self.elapsed,
            self.segments(),
            self.events,
            failed=self.failed,
            slos=self.slos,
            stats_rejected=self._builder.appstats.rejected,
            remote_dropped=self.children.listener.dropped if self.children.listener else 0,
        )
