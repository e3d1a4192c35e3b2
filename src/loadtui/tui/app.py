"""The dashboard: a Textual app that renders Ticks and turns keys into RunConfig changes.

It is built by one factory, :func:`create_app`, used by the CLI and the tests. A live dashboard drives a Session
through the session's :class:`~loadtui.session.driver.Driver`; a replay feeds recorded Ticks through the same message.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from textual import events, on
from textual.app import App, ComposeResult
from textual.containers import Grid, Vertical
from textual.widgets import Footer, Static

from loadtui.config import RunConfig
from loadtui.diagnose import THRESHOLDS
from loadtui.errors import UsageError
from loadtui.model import Event, Tick
from loadtui.results.compare import Baseline
from loadtui.results.recorder import SessionLog
from loadtui.results.segments import Row
from loadtui.results.verdict import Slo
from loadtui.session.core import Session
from loadtui.session.driver import Driver, JobName
from loadtui.session.plan import DEFAULT_STEP_S, Plan, PlanRunner
from loadtui.tui import keys
from loadtui.tui.header import config_line, problem_text, status_line
from loadtui.tui.messages import EventArrived, JobFinished, Progress, TickArrived
from loadtui.tui.replay import REPLAY_FRAME_S, ReplayControls, ReplayPlayer
from loadtui.tui.screens import FindingsScreen, HelpScreen, MarkScreen, ScenarioScreen
from loadtui.tui.widgets import (
    AppPanel,
    DatabasePanel,
    DiagnosisPanel,
    EndpointsPanel,
    EventsPanel,
    LoadgenPanel,
    LoadPanel,
    PlanPanel,
)


class LoadtuiApp(ReplayControls, App[int]):
    """The loadtui dashboard."""

    CSS_PATH = "app.tcss"
    TITLE = "loadtui"

    BINDINGS = keys.BINDINGS

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Live keys exist only live and replay keys only in a replay: hidden from the footer and disabled."""
        if self.replay is not None and action in keys.LIVE_ONLY:
            return False
        return not (self.replay is None and action in keys.REPLAY_ONLY)

    def __init__(
        self,
        *,
        session: Session | None = None,
        replay: SessionLog | None = None,
        config: RunConfig | None = None,
        speed: float = 1.0,
        plan: PlanRunner | None = None,
        baseline: Baseline | None = None,
    ) -> None:
        super().__init__()
        self.session = session
        self.plan = plan
        """A sweep (`--vary`) this dashboard runs, step by step, on the control thread."""
        self.controller: Driver | None = None
        self.replay = ReplayPlayer(replay, speed=speed) if replay is not None else None
        self.applied: RunConfig = (
            (session.config if session else None) or config or (replay.config if replay else RunConfig())
        )
        self.status = "starting…" if session else ""
        self.job_started: float | None = time.monotonic() if session else None
        """When the running control job (start-up, restart...) began; None when none runs."""
        self.last_tick: Tick | None = None
        self.ticks_seen = 0
        self.exit_status = 0
        self.open_error: str | None = None
        """Why the session could not start, if it could not."""
        self._last_warning: tuple[str, float] | None = None
        self.baseline = baseline
        """A recorded session the live figures are shown against (`--baseline`), or None."""
        self._recent: deque[Row] = deque(maxlen=Baseline.LIVE_S)
        self._pause_wanted: bool | None = None
        """What the last space asked for while its job may still be queued (None: follow the session)."""

    @property
    def pending(self) -> RunConfig:
        """The configuration asked for: the session owns it (keys propose to it); a replay shows what was applied."""
        return self.session.changes.pending if self.session is not None else self.applied

    # -- layout ------------------------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Static(id="config-bar")
        yield Static(id="status-bar")
        yield Static(id="problem")
        with Grid(id="main"):
            yield LoadPanel()
            yield DiagnosisPanel()
            yield AppPanel()
            yield DatabasePanel()
            yield EndpointsPanel()
            with Vertical(id="side"):
                yield PlanPanel()
                yield LoadgenPanel()
                yield EventsPanel()
        yield Footer()

    def on_mount(self) -> None:
        self._render_config()
        self.on_resize()
        self.set_interval(0.5, self._tick_spinner)
        self.query_one(PlanPanel).display = self.plan is not None
        if self.plan is not None:
            self.set_interval(0.5, self._advance_plan)
        if self.session is not None:
            self.session.subscribe(
                on_tick=lambda t: self.post_message(TickArrived(t)),
                on_event=lambda e: self.post_message(EventArrived(e)),
            )
            self.controller = Driver(
                self.session,
                on_done=self._job_done,
                progress=lambda text: self.post_message(Progress(text)),
                plan=self.plan,
                auto_confirm=self.session.config.auto_confirm,
            )
            self.controller.start()
        elif self.replay is not None:
            self.title = f"loadtui replay · {self.replay.log.path.name}"
            self.set_interval(REPLAY_FRAME_S, self._replay_frame)

    async def on_unmount(self) -> None:
        """However the app ends, the session ends with it (stopping everything it started)."""
        if self.controller is not None and not self.controller.closed.is_set():
            await asyncio.to_thread(self.controller.close)

    def _advance_plan(self) -> None:
        """Show where the plan stands (the driver steps it) and the configuration it applied."""
        if self.plan is None:
            return
        self.query_one(PlanPanel).show(self.plan.view())
        if self.session is not None and self.job_started is None and self.applied != self.session.config:
            self.applied = self.session.config
            self._render_config()

    def _take_over(self) -> None:
        """A change by hand ends a running plan: the user is in charge from now on."""
        if self.plan is not None and not self.plan.finished:
            self.plan.stop("you took over")
            self.notify("plan stopped: you took over (its verdict covers the steps measured so far)")

    def action_skip_step(self) -> None:
        """Plan: end the current step now and go on with the next."""
        if self.plan is None or self.plan.finished:
            self.notify("no plan is running (start one with --vary)", severity="warning")
            return
        self.plan.skip()

    def action_end_plan(self) -> None:
        """Plan: stop it here and give the verdict of the steps measured so far."""
        if self.plan is None or self.plan.finished:
            self.notify("no plan is running (start one with --vary)", severity="warning")
            return
        self.plan.stop("ended with e")
        self.query_one(PlanPanel).show(self.plan.view())

    def _job_done(self, name: str, ok: bool, message: str, usage_error: bool) -> None:
        self.post_message(JobFinished(name, ok, message, usage_error))

    def on_resize(self, _event: object = None) -> None:
        """Stack panels in a narrow terminal."""
        self.set_class(self.size.width < 120, "narrow")

    # -- data in -----------------------------------------------------------------------------------------------

    @on(TickArrived)
    def show_tick(self, message: TickArrived) -> None:
        """Render one second in every panel at once."""
        tick = message.tick
        self.last_tick = tick
        self.ticks_seen += 1
        with self.batch_update():
            self.query_one(LoadPanel).show(tick, self._against(tick))
            self.query_one(EndpointsPanel).show(tick)
            self.query_one(AppPanel).show(tick)
            self.query_one(LoadgenPanel).show(tick)
            self.query_one(DatabasePanel).show(tick)
            self.query_one(DiagnosisPanel).show(tick, judged=self.ticks_seen >= THRESHOLDS.first_verdict_s)
            if self.session is None:
                self._render_status()

    def _against(self, tick: Tick) -> str | None:
        """The live figures against `--baseline`, for the load panel."""
        if self.baseline is None:
            return None
        self._recent.append(Row.of(tick))
        return self.baseline.line(self.applied, [r for r in self._recent if r.segment == tick.segment])

    @on(EventArrived)
    def show_event(self, message: EventArrived) -> None:
        """Add an event to the list."""
        event = message.event
        self.query_one(EventsPanel).add(event)
        if event.kind in ("restart-failed", "app-exited", "loadgen-exited"):
            self.status = f"{event.kind}: {event.message}"
            self._render_status()
            self._show_problem(event)

    def _show_problem(self, event: Event | None) -> None:
        """Keep a failure on screen, with the app's own last lines, until it is fixed (or hide it)."""
        problem = self.query_one("#problem", Static)
        if event is None:
            problem.display = False
            return
        problem.update(problem_text(event))
        problem.display = True

    @on(Progress)
    def show_progress(self, message: Progress) -> None:
        """A step of a long operation."""
        self.status = message.text + "…"
        self._render_status()

    def _tick_spinner(self) -> None:
        if self.job_started is not None:
            self._render_status()

    @on(JobFinished)
    def job_finished(self, message: JobFinished) -> None:
        """A control job is done: show its outcome and the configuration now applied."""
        if message.name == "auto-confirm":
            return  # its result is a confirmation (or confirmation-failed) event, shown with the finding
        if message.name in ("pause", "resume") and self.controller is not None and not self.controller.busy:
            self._pause_wanted = None  # every press has run: the session's state is the truth again
        if message.name in ("plan", "plan-step"):
            if not message.ok:
                self.notify(message.message, title="plan", severity="error", timeout=15, markup=False)
            if self.plan is not None:
                self.query_one(PlanPanel).show(self.plan.view())
            return
        self.job_started = None
        if self.session is not None:
            self.applied = self.session.config
        if message.ok and message.name in ("apply", "workers", "scenario"):
            self._show_problem(None)
        if message.ok and message.name == "propose":
            self._render_config()
            return
        if message.ok:
            self.status = {"open": f"live · recording to {self.session.record_path if self.session else ''}"}.get(
                message.name, f"{message.name}: done {message.message}".rstrip()
            )
        else:
            self.status = f"{message.name} failed: {message.message}"
            if message.name == "open":
                # Nothing to show without a session: leave the terminal and say why in one line (run_dashboard).
                self.open_error = message.message
                self.exit(2 if message.usage_error else 1)
                return
            else:
                # Foreign text (the app's log, pydantic errors, routes like [/tasks/{id}]) is never markup.
                self.notify(message.message, title=f"{message.name} failed", severity="error", timeout=15, markup=False)
        self._render_config()
        self._render_status()

    # -- header ------------------------------------------------------------------------------------------------

    def on_key(self, event: events.Key) -> None:
        """A replay answers a live key (not bound in a replay) with one line, instead of nothing."""
        if self.replay is not None and event.key in keys.live_keys():
            self._warn(f"{event.key}: a replay is read-only; run loadtui to change users, workers or settings")

    def _render_config(self) -> None:
        line = config_line(self.applied, self.pending, self.replay is not None)
        self.query_one("#config-bar", Static).update(line)

    def _render_status(self) -> None:
        line = status_line(self.status, self.replay, self.job_started)
        self.query_one("#status-bar", Static).update(line)

    # -- live actions ------------------------------------------------------------------------------------------

    def _submit(self, name: JobName, job: Any, ack: str) -> None:
        if self.controller is None:
            self.notify("the session is not live", severity="warning")
            return
        if not self.controller.opened.is_set():
            self.notify("still starting…", severity="warning")
            return
        self.status = ack
        if name in ("apply", "workers", "scenario", "resume", "pause", "confirm"):
            self.job_started = time.monotonic()
        self._render_status()
        self.controller.submit(name, job)

    def action_users(self, delta: int) -> None:
        """Change the user count (live); with `--rate`, step the arrival rate instead."""
        if self.pending.rate is not None:
            rate = keys.step_rate(self.pending.rate, delta)
            if not self._propose(rate=rate):
                return
            self._submit("rate", lambda s: s.changes.set_rate(rate), f"rate → {rate:g} req/s")
            return
        users = max(0, self.pending.users + delta)
        if not self._propose(users=users):
            return
        self._submit("users", lambda s: s.changes.set_users(users), f"users → {users}")

    def action_workers(self, delta: int) -> None:
        """Change the worker count (live)."""
        workers = max(1, self.pending.workers + delta)
        if workers == self.pending.workers:
            self._warn("at least one worker")
            return
        if not self._propose(workers=workers):
            return
        self._submit("workers", lambda s: s.changes.set_workers(workers), f"workers → {workers}…")

    WARNING_S = 5.0
    """A warning stays this long; the same warning again within it is not stacked (15 presses, one toast)."""

    def _warn(self, text: str) -> None:
        """One toast per distinct warning: repeating a refused key does not pile toasts over the header."""
        now = time.monotonic()
        if (
            self._last_warning is not None
            and self._last_warning[0] == text
            and now - self._last_warning[1] < self.WARNING_S
        ):
            return
        self._last_warning = (text, now)
        self.notify(text, severity="warning", timeout=self.WARNING_S, markup=False)

    def _propose(self, **changes: Any) -> bool:
        """Ask the session for a change (applied later: by a job, or by `a`); False when it is refused."""
        if self.session is None:
            return False
        self._take_over()
        try:
            self.session.changes.propose(**changes)
        except (UsageError, ValueError) as exc:
            self._warn(str(exc))
            return False
        self._render_config()
        return True

    def action_pool_max(self, delta: int) -> None:
        """Pool max ± 1 (pending until applied)."""
        self._propose(pool_max=max(1, self.pending.pool_max + delta))

    def action_pool_min(self, delta: int) -> None:
        """Pool min ± 1 (pending until applied)."""
        self._propose(pool_min=max(0, self.pending.pool_min + delta))

    def action_db_mode(self) -> None:
        """Toggle pool / connection per request (pending)."""
        self._propose(db_mode="per-request" if self.pending.db_mode == "pool" else "pool")

    def action_access_log(self) -> None:
        """Toggle the access log (pending)."""
        self._propose(access_log=not self.pending.access_log)

    def action_apply(self) -> None:
        """Restart with the pending configuration."""
        target = self.pending
        if self.session is not None and not self.session.changes.would_apply(target):
            self._warn("nothing to apply: change a setting first (] [ } { d l), or c for a scenario")
            return
        self._take_over()
        self._submit(
            "apply", lambda s: s.changes.apply(target, progress=lambda t: self.post_message(Progress(t))), "applying…"
        )

    def action_pause(self) -> None:
        """Pause or resume the load (or the replay)."""
        if self.replay is not None:
            self.replay.toggle()
            self._render_status()
            return
        if self.session is None:
            return
        # Decided from what was asked last, not from the session's state: a press while a restart runs is queued
        # behind it, and a second press must undo the first, not pause again.
        want = not (self._pause_wanted if self._pause_wanted is not None else self.session.changes.paused)
        self._pause_wanted = want
        if want:
            self._submit("pause", lambda s: s.changes.set_paused(True), "pausing…")
        else:
            self._submit("resume", lambda s: s.changes.set_paused(False), "resuming…")

    def action_scenario(self) -> None:
        """Choose a scenario."""
        if self.replay is not None:
            return

        def chosen(name: str | None) -> None:
            if name:
                if not self._propose(scenario=name):
                    return
                target = self.pending
                self._submit("scenario", lambda s: s.changes.apply(target), f"scenario → {name}…")

        self.push_screen(ScenarioScreen(self.applied.scenario), chosen)

    def action_confirm(self) -> None:
        """Confirm the findings with a py-spy dump of the busiest workers."""
        self._submit("confirm", lambda s: s.confirm(), "py-spy: dumping the busiest workers…")

    def action_mark(self) -> None:
        """Mark this moment with a note."""

        def noted(note: str | None) -> None:
            if note is not None:
                self._submit("mark", lambda s: s.mark(note), f"marked: {note}")

        self.push_screen(MarkScreen(), noted)

    def action_save_svg(self) -> None:
        """Save an SVG screenshot beside the session log (or the replayed log), and say where."""
        if self.session is not None:
            folder = self.session.record_path.parent
        elif self.replay is not None:
            folder = self.replay.log.path.parent
        else:
            folder = Path.cwd()
        folder.mkdir(parents=True, exist_ok=True)
        path = Path(self.save_screenshot(path=str(folder))).resolve()
        self.notify(f"screenshot saved: {path}", markup=False, timeout=10)

    def action_help(self) -> None:
        """Show the help screen."""
        self.push_screen(HelpScreen())

    def action_findings(self) -> None:
        """The active findings in full (a panel cuts long advice at 160×48 and more at 80×24)."""
        self.push_screen(FindingsScreen(self.last_tick.findings if self.last_tick is not None else []))

    def action_page(self, direction: int) -> None:
        """Scroll the panels a page (at 80×24 they stand in one scrolled column)."""
        main = self.query_one("#main")
        if direction > 0:
            main.scroll_page_down(animate=False)
        else:
            main.scroll_page_up(animate=False)

    async def action_quit_app(self) -> None:
        """Stop everything and quit."""
        self.status = "stopping everything loadtui started…"
        self._render_status()
        if self.controller is not None:
            await asyncio.to_thread(self.controller.close)
        self.exit(self.exit_status)

    # -- replay ------------------------------------------------------------------------------------------------


def create_app(
    *,
    config: RunConfig | None = None,
    replay: SessionLog | None = None,
    speed: float = 1.0,
    live: bool = False,
    plan: Plan | None = None,
    slos: Sequence[Slo] | None = None,
    step_s: float = DEFAULT_STEP_S,
    baseline: SessionLog | None = None,
) -> LoadtuiApp:
    """The one factory for the dashboard, used by the CLI and the tests.

    `live=True` starts a real Session for `config`; without it the screen shows `config` and renders the Ticks it is
    given (Pilot tests); with `replay`, the recorded session plays through the same path.
    """
    if replay is not None:
        return LoadtuiApp(replay=replay, speed=speed)
    session = Session(config or RunConfig(), slos=slos or ()) if live else None
    runner = PlanRunner(plan, slos or (), step_s) if plan is not None else None
    against = Baseline(baseline) if baseline is not None else None
    return LoadtuiApp(session=session, config=config, plan=runner, baseline=against)
