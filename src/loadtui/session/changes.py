"""Changes to a running session: what runs (`config`), what the user asked for (`pending`), pause and resume, and
each change applied live where it can be (users, the rate, workers by signal) or by restart. One validated
:class:`RunConfig` per change, checked once against the database's connection limit.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from collections.abc import Callable, Iterator
from typing import Any

from loadtui.config import RunConfig, check_pool_fits
from loadtui.errors import RunFailed, UsageError
from loadtui.loadgen import LoadGenError
from loadtui.session.children import Children
from loadtui.session.health import HealthWatcher
from loadtui.session.shaping import LoadShaper
from loadtui.stack.supervisor import AppStartError

DRAIN_SECONDS = 5.0
"""While a worker is removed, the load generator retries what it drops unread for this long."""

LOAD_FIELDS = ("users", "spawn_rate", "rate", "arrivals", "max_in_flight")
"""The settings the load generator takes live."""

Say = Callable[[str], object]
SegmentStarter = Callable[..., None]
"""`new_segment(config, reason, kind="config", **data)`: one event says what changed; the figures start anew."""


class Changes:
    """The control state machine: applied, pending, paused; one change at a time."""

    def __init__(
        self,
        config: RunConfig,
        *,
        children: Children,
        shaper: LoadShaper,
        health: HealthWatcher,
        event: Callable[..., object],
        new_segment: SegmentStarter,
    ) -> None:
        self.config = config
        """The configuration applied now."""
        self.pending = config
        """The configuration the user asked for; differs from :attr:`config` while a restart is pending.

        Its one owner: the dashboard reads it and changes it through :meth:`propose` only."""
        self.paused = False
        self._children = children
        self._shaper = shaper
        self._health = health
        self._event = event
        self._new_segment = new_segment
        self._pending_lock = threading.Lock()
        self._busy = threading.Lock()
        """Held by one change at a time (workers, apply)."""
        self.changing = threading.Event()
        """Set while a change replaces processes on purpose: read by the tick thread, never the lock itself."""

    def _check(self, new: RunConfig) -> RunConfig:
        new.validate()
        limits = self._children.limits
        if limits is not None:
            check_pool_fits(new, limits.for_ordinary_roles)
        return new

    def propose(self, **changes: Any) -> RunConfig:
        """Record a change without applying it (a key press, before its job runs or `a` applies it).

        Cheap and safe from any thread: the dashboard calls it from its own, so fast key presses add up.
        """
        with self._pending_lock:
            self.pending = self.pending.replace(**changes)
            return self.pending

    def would_apply(self, config: RunConfig) -> bool:
        """True when applying `config` would do something: a setting differs, or the app or load generator exited."""
        app, loadgen = self._children.app, self._children.loadgen
        return (
            config != self.config or (app is not None and not app.alive) or (loadgen is not None and not loadgen.alive)
        )

    def _drive(self, cfg: RunConfig) -> None:
        loadgen = self._children.loadgen
        if loadgen is not None and not self.paused:
            loadgen.drive(cfg)

    def change(self, progress: Say | None = None, **changes: Any) -> None:
        """Apply several settings as one step, one segment: live where possible (the load, workers), else by restart."""
        new = self.config.replace(**changes)
        if new == self.config:
            return
        app = self._children.app
        live = set(LOAD_FIELDS) | ({"workers"} if app is not None and app.supports_live_workers else set())
        differ = set(changed_fields(self.config, new))
        if not differ <= live:
            self.apply(self.propose(**changes), progress=progress)
            return
        moved: dict[str, Any] = {}
        if new.workers != self.config.workers:
            moved = self._workers_live(self._check(new))
        if any(getattr(self.config, f) != getattr(new, f) for f in LOAD_FIELDS):
            self._drive(new)
        self.config = new
        self.propose(**changes)
        reason = describe_change(changes)
        if moved:  # the worker change says how long it took; the rest of the step follows it
            rest = describe_change({k: v for k, v in changes.items() if k != "workers"})
            reason = str(moved.pop("message")) + (f", {rest}" if rest else "")
        self._new_segment(new, reason, "workers" if moved else "config", **moved)
        if "workers" in differ:
            self._shaper.start_rebalance(f"workers → {new.workers}")

    def set_users(self, users: int, spawn_rate: float | None = None) -> None:
        """Change the number of simulated users (live); users, not a rate, from now on."""
        users = max(0, users)
        rate = spawn_rate if spawn_rate is not None else self.config.spawn_rate
        self.config = self.config.replace(users=users, spawn_rate=rate, rate=None)
        self.propose(users=users, spawn_rate=rate, rate=None)
        loadgen = self._children.loadgen
        if loadgen is not None and not self.paused:
            loadgen.set_users(users, rate)
        self._new_segment(self.config, f"users → {users}")

    def set_rate(self, rate: float) -> None:
        """Change the arrival rate (live; the open model)."""
        rate = max(0.0, rate)
        self.config = self.config.replace(rate=rate)
        self.propose(rate=rate)
        self._drive(self.config)
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
        self._shaper.end_first_step(now=True)  # no ramp after the pause: resume starts every user
        if self._children.loadgen is not None:
            self._children.loadgen.stop_users()
        self._event("paused", "load paused")

    def resume(self) -> None:
        """Start the users again after :meth:`pause`."""
        if not self.paused:
            return
        self.paused = False
        if self.config.has_load:
            self._drive(self.config)
        self._new_segment(self.config, "load resumed", "resumed")
        self._shaper.start_rebalance("resume")

    def set_workers(self, workers: int) -> None:
        """Change the app's worker count: live by signal where the app supports it, else by restart."""
        app = self._children.app
        if app is None:
            raise UsageError("the app is not run by loadtui (--host); its workers cannot change")
        new = self._check(self.config.replace(workers=workers))
        if not app.supports_live_workers:
            self.apply(self.propose(workers=workers))
            return
        moved = self._workers_live(new)
        self.config = new
        self.propose(workers=workers)
        self._new_segment(self.config, str(moved.pop("message")), "workers", **moved)
        self._shaper.start_rebalance(f"workers → {workers}")

    def _workers_live(self, new: RunConfig) -> dict[str, Any]:
        """Add or remove workers by signal; returns what the `workers` event says (the caller starts the segment)."""
        app, loadgen = self._children.app, self._children.loadgen
        assert app is not None
        before = app.worker_pids()
        with self.one_change():
            if new.workers < len(before) and loadgen is not None and new.closes_only_idle_connections:
                loadgen.draining(DRAIN_SECONDS)  # a POST reset unread may be sent again (idempotent ones always)
            try:
                seconds = app.set_workers(new.workers)
            except AppStartError as exc:
                self._event("error", f"worker change failed: {exc}")
                raise RunFailed(str(exc)) from None
            self._health.app_started(app.worker_pids())
        return {
            "message": f"workers {len(before)} → {new.workers} in {seconds:.2f} s (live)",
            "workers": new.workers,
            "seconds": round(seconds, 3),
            "pids": sorted(self._health.known_workers),
        }

    def apply(self, config: RunConfig | None = None, progress: Say | None = None) -> None:
        """Apply `config` (default: the pending one): restart the app and/or the load generator as needed.

        On failure the old configuration stays the applied one, the error is an event, and RunFailed is raised
        with the app's own words; the user can fix the setting and apply again.
        """
        say = progress or (lambda _msg: None)
        new = self._check(config or self.pending)
        old, c = self.config, self._children
        app_dead = c.app is not None and not c.app.alive
        restart_app = bool(new.needs_restart(old)) or new.workers != old.workers or app_dead
        restart_loadgen = new.scenario != old.scenario or (c.loadgen is not None and not c.loadgen.alive)
        with self.one_change():
            if restart_app and c.app is not None:
                self._restart_app(new, old, app_dead, say)
            if restart_loadgen and c.loadgen is not None:
                say("restarting the load generator")
                c.loadgen.stop()
                c.loadgen = c.new_loadgen(new)
                try:
                    c.loadgen.start()
                except LoadGenError as exc:
                    self._event("error", f"load generator: {exc}")
                    raise RunFailed(str(exc)) from None
                self._health.loadgen_started()
            self.config = new
            self.pending = new
            if new.has_load:
                self._drive(new)
        changed = [describe_change({f: getattr(new, f)}) for f in changed_fields(old, new)]
        self._new_segment(new, "configuration applied: " + (", ".join(changed) or "restarted as it was"), "applied")
        if restart_app:
            self._shaper.start_rebalance("restart")

    def _restart_app(self, new: RunConfig, old: RunConfig, app_dead: bool, say: Say) -> None:
        c = self._children
        assert c.app is not None
        say("restarting the app")
        why = "it had exited" if app_dead else ", ".join(new.needs_restart(old)) or "workers"
        self._event(
            "restart", f"restarting the app: {why}", changes={k: getattr(new, k) for k in new.needs_restart(old)}
        )
        if c.loadgen is not None:
            c.loadgen.stop_users()
        try:
            c.app.restart(new, c.dsn, say)
        except AppStartError as exc:
            self._event("restart-failed", str(exc), log_tail=c.app.log_tail())
            self.pending = new
            raise RunFailed(str(exc)) from None
        self._health.app_started(c.app.worker_pids())

    @contextlib.contextmanager
    def one_change(self) -> Iterator[None]:
        """One change at a time; while it runs, processes that come and go are not crashes."""
        with self._busy:
            self.changing.set()
            try:
                yield
            finally:
                self.changing.clear()


def changed_fields(old: RunConfig, new: RunConfig) -> list[str]:
    """The fields that differ between two configurations."""
    return [f.name for f in dataclasses.fields(new) if getattr(new, f.name) != getattr(old, f.name)]


def describe_change(changes: dict[str, Any]) -> str:
    """A `config` event's reason for a step of several changes: `workers → 2, users → 40`."""
    return ", ".join(f"{k.replace('_', ' ')} → {v}" for k, v in changes.items())
