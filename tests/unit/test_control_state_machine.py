"""The session's control state machine, driven by hypothesis with stand-ins for the children.

Every sequence of key presses and faults — users, rate, workers, pause and resume (twice, too), pending settings and
apply, a crashed app, a restart that fails — must leave the session in a state where what the header shows
(`config`, `paused`) is what runs (the stand-in load generator's last command, the stand-in app's workers), pause and
resume pair up, and every event is well formed with segments numbered one after another.
"""

from __future__ import annotations

import itertools
import threading
import typing
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from loadtui.config import RunConfig
from loadtui.errors import RunFailed
from loadtui.model import Event, EventKind
from loadtui.session.changes import Changes
from loadtui.session.health import HealthWatcher
from loadtui.session.shaping import LoadShaper
from loadtui.stack.supervisor import AppStartError

KINDS = set(typing.get_args(EventKind))


class StandApp:
    """What Changes uses of an AppSupervisor."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.alive = True
        self.config: RunConfig | None = None
        self.supports_live_workers = True
        self.port = None  # no spreading over the workers: that needs real sockets
        self.fail_next_restart = False
        self.exit_status: int | None = None

    def worker_pids(self) -> list[int]:
        return list(range(1000, 1000 + self.workers)) if self.alive else []

    def set_workers(self, count: int) -> float:
        self.workers = count
        return 0.01

    def restart(self, config: RunConfig, dsn: str | None, say: Any = None) -> None:
        if self.fail_next_restart:
            self.fail_next_restart = False
            self.alive = False
            raise AppStartError("the app did not start: ImportError")
        self.workers, self.alive, self.config = config.workers, True, config

    def log_tail(self) -> list[str]:
        return []


class StandLoadGen:
    """What Changes uses of a LoadGen: remembers the load it was last told to send."""

    def __init__(self) -> None:
        self.alive = True
        self.running: tuple[str, float] | None = None
        """("users", n) or ("rate", r); None when stopped."""
        self.pids = [1]
        self.error = None

    def drive(self, cfg: RunConfig) -> None:
        if cfg.rate is not None:
            self.running = ("rate", cfg.rate) if cfg.rate > 0 else None
        else:
            self.set_users(cfg.users, cfg.spawn_rate)

    def set_users(self, users: int, spawn_rate: float) -> None:
        self.running = ("users", users) if users > 0 else None

    def stop_users(self) -> None:
        self.running = None

    def draining(self, seconds: float) -> None:
        pass

    def stop(self) -> None:
        self.alive = False

    def start(self) -> None:
        self.alive = True


class StandChildren:
    def __init__(self, config: RunConfig) -> None:
        self.app = StandApp(config.workers)
        self.loadgen = StandLoadGen()
        self.limits = None
        self.dsn = "postgresql://stand@/db"

    def new_loadgen(self, cfg: RunConfig) -> StandLoadGen:
        return StandLoadGen()


class ControlMachine(RuleBasedStateMachine):
    @initialize(users=st.integers(1, 40), workers=st.integers(1, 4))
    def open(self, users: int, workers: int) -> None:
        self.events: list[Event] = []
        config = RunConfig(users=users, workers=workers)
        self.children = StandChildren(config)

        def event(kind: EventKind, message: str, **data: Any) -> None:
            self.events.append(Event(float(len(self.events)), kind, message, data))

        self.segment = 0

        def new_segment(cfg: RunConfig, reason: str, kind: EventKind = "config", **data: Any) -> None:
            shaper.changed()
            self.segment += 1
            event(kind, reason, segment=self.segment, config=cfg.to_dict(), **data)

        shaper = LoadShaper(
            config=lambda: self.changes.config, paused=lambda: self.changes.paused,
            app=lambda: self.children.app, loadgen=lambda: self.children.loadgen,  # type: ignore[arg-type,return-value]
            event=event, stop=threading.Event(),
        )  # fmt: skip
        self.changes = Changes(
            config, children=self.children, shaper=shaper, health=HealthWatcher(), event=event,  # type: ignore[arg-type]
            new_segment=new_segment,
        )  # fmt: skip
        shaper.start(config, self.children.loadgen)  # type: ignore[arg-type]
        shaper.end_first_step(now=True)

    @rule(users=st.integers(0, 60))
    def users(self, users: int) -> None:
        self.changes.set_users(users)

    @rule(rate=st.floats(0, 500, allow_nan=False))
    def rate(self, rate: float) -> None:
        self.changes.set_rate(rate)

    @rule(workers=st.integers(1, 6))
    def workers(self, workers: int) -> None:
        self.changes.set_workers(workers)

    @rule(paused=st.booleans())
    def pause_or_resume(self, paused: bool) -> None:
        self.changes.set_paused(paused)

    @rule(pool_max=st.integers(2, 20))
    def propose_pool(self, pool_max: int) -> None:
        self.changes.propose(pool_max=pool_max)

    @rule()
    def apply(self) -> None:
        self.changes.apply()

    @rule()
    def the_app_crashes(self) -> None:
        self.children.app.alive = False

    @precondition(lambda self: self.changes.pending != self.changes.config or not self.children.app.alive)
    @rule()
    def a_restart_fails(self) -> None:
        before = self.changes.config
        self.children.app.fail_next_restart = True
        with pytest.raises(RunFailed):
            self.changes.apply()
        assert self.changes.config == before  # the old configuration stays the applied one

    @rule(users=st.integers(1, 60), workers=st.integers(1, 6))
    def one_step_of_two_changes(self, users: int, workers: int) -> None:
        self.changes.change(users=users, workers=workers)

    @invariant()
    def what_the_header_shows_is_what_runs(self) -> None:
        cfg, loadgen = self.changes.config, self.children.loadgen
        if not self.children.app.alive:
            return  # a crashed app: `a` restarts it; nothing is claimed to run
        assert self.children.app.workers == cfg.workers
        if self.changes.paused or not cfg.has_load:
            assert loadgen.running is None
        elif cfg.rate is not None:
            assert loadgen.running == ("rate", cfg.rate)
        else:
            assert loadgen.running == ("users", cfg.users)

    @invariant()
    def pause_and_resume_pair_up(self) -> None:
        kinds = [e.kind for e in self.events if e.kind in ("paused", "resumed")]
        assert all(a != b for a, b in itertools.pairwise(kinds)), kinds  # never twice in a row
        assert (kinds[-1:] == ["paused"]) == self.changes.paused if kinds else not self.changes.paused

    @invariant()
    def events_are_well_formed(self) -> None:
        numbers = [e.data["segment"] for e in self.events if "segment" in e.data]
        assert numbers == list(range(1, len(numbers) + 1))
        for e in self.events:
            assert e.kind in KINDS and isinstance(e.message, str) and e.message
            if "config" in e.data:
                RunConfig(**{k: v for k, v in e.data["config"].items()})  # a valid configuration, as recorded

    @invariant()
    def pending_never_loses_what_was_applied(self) -> None:
        cfg, pending = self.changes.config, self.changes.pending
        for live in ("users", "workers", "rate"):
            assert getattr(pending, live) == getattr(cfg, live), live  # live settings are applied as they are asked


TestControl = ControlMachine.TestCase
TestControl.settings = settings(max_examples=60, stateful_step_count=25, deadline=None)
