"""The dashboard: a Textual app that renders Ticks and turns keys into RunConfig changes.

It is built by one factory, :func:`create_app`, used by the CLI and the tests. A live dashboard drives a Session
through a :class:`~loadtui.tui.controller.SessionController`; a replay feeds recorded Ticks through the same message.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Footer, Input, Markdown, OptionList, Static
from textual.widgets.option_list import Option

from loadtui.config import SCENARIOS, RunConfig
from loadtui.model import Event, Tick
from loadtui.recorder import SessionLog
from loadtui.session import Session
from loadtui.tui.controller import SessionController
from loadtui.tui.widgets import (
    AppPanel,
    DatabasePanel,
    DiagnosisPanel,
    EndpointsPanel,
    EventsPanel,
    LoadgenPanel,
    LoadPanel,
)

HELP_NOTES = """\
**applied** is the configuration running now; **pending** (yellow) are changes that need a restart of the app: they
take effect when you press `a`. Users, workers and pause apply at once. After a worker change or a restart loadtui
moves the users' keep-alive connections so each worker gets its share (`--no-rebalance` to study stickiness).

Latencies come from Locust's histogram: whole milliseconds below 100 ms, two significant digits above
(147 ms is counted as 150 ms). Per-second figures are deltas between two seconds, not Locust's 10-second averages.
"""

LIVE_ONLY = frozenset(
    {"users", "workers", "pool_max", "pool_min", "db_mode", "access_log", "apply", "scenario", "mark", "confirm"}
)
"""Actions that change or probe a running session: disabled and hidden in a replay."""

REPLAY_ONLY = frozenset({"step", "speed", "seek"})
"""Actions that move through a recording: hidden while live."""


class TickArrived(Message):
    """A new second to render. A newer one replaces one still queued: the screen never falls behind."""

    def __init__(self, tick: Tick) -> None:
        super().__init__()
        self.tick = tick

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, TickArrived)


class EventArrived(Message):
    """Something happened in the session."""

    def __init__(self, event: Event) -> None:
        super().__init__()
        self.event = event


class JobFinished(Message):
    """A control job (open, apply, workers...) finished on the control thread."""

    def __init__(self, name: str, ok: bool, message: str, usage_error: bool = False) -> None:
        super().__init__()
        self.name = name
        self.ok = ok
        self.message = message
        self.usage_error = usage_error
        """True when the failure is bad input (exit status 2)."""


class Progress(Message):
    """A step of a long operation (start-up, restart)."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text


def help_text(app: App[Any]) -> str:
    """The help page of the app's current mode, built from its bindings (so it cannot drift from them)."""
    replay = getattr(app, "replay", None) is not None
    rows = []
    for binding in app.BINDINGS:
        assert isinstance(binding, Binding)
        name = binding.action.split("(")[0]
        if (replay and name in LIVE_ONLY) or (not replay and name in REPLAY_ONLY):
            continue
        keys = " ".join(f"`{app.get_key_display(Binding(k, ''))}`" for k in binding.key.split(","))
        rows.append(f"| {keys} | {binding.tooltip or binding.description} |")
    title = "# loadtui keys (replay)" if replay else "# loadtui keys"
    table = "| key | does |\n|---|---|\n" + "\n".join(rows)
    close = "Close this help with `escape`, `q` or `?`."
    return f"{title}\n\n{close}\n\n{table}\n\n{'' if replay else HELP_NOTES}"


class HelpScreen(ModalScreen[None]):
    """The keys of the current mode, and what the numbers mean."""

    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box"):
            yield Markdown(help_text(self.app))


class ScenarioScreen(ModalScreen[str | None]):
    """Pick a scenario; each comes with what it teaches."""

    BINDINGS = [Binding("escape", "dismiss(None)", "cancel")]

    def compose(self) -> ComposeResult:
        options = [Option(Text.assemble((s.name, "bold"), "  ", (s.lesson, "dim")), id=s.name) for s in SCENARIOS]
        with Vertical(id="scenario-box"):
            yield Static("Choose a scenario (enter), escape to cancel", classes="box-title")
            yield OptionList(*options, id="scenario-list")

    @on(OptionList.OptionSelected)
    def chosen(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)


class MarkScreen(ModalScreen[str | None]):
    """Type a note for the mark."""

    BINDINGS = [Binding("escape", "dismiss(None)", "cancel")]

    def compose(self) -> ComposeResult:
        with Vertical(id="mark-box"):
            yield Static("Note for this moment (enter to save, escape to cancel)", classes="box-title")
            yield Input(placeholder="e.g. before adding workers", id="mark-input")

    @on(Input.Submitted)
    def submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value)


@dataclass
class ReplayState:
    """Where a replay is."""

    log: SessionLog
    index: int = 0
    playing: bool = True
    speed: float = 1.0


class LoadtuiApp(App[int]):
    """The loadtui dashboard."""

    CSS_PATH = "app.tcss"
    TITLE = "loadtui"

    BINDINGS = [
        Binding("w", "users(1)", "users +1", id="users.up", tooltip="users +1 (live)"),
        Binding("W", "users(10)", "+10", show=False, id="users.up10", tooltip="users +10 (live)"),
        Binding("s", "users(-1)", "users −1", id="users.down", tooltip="users −1 (live)"),
        Binding("S", "users(-10)", "−10", show=False, id="users.down10", tooltip="users −10 (live)"),
        Binding("plus", "workers(1)", "workers +", id="workers.up",
                tooltip="workers +1 (live: SIGTTIN; the users' connections are then spread over the workers)"),
        Binding("minus", "workers(-1)", "workers −", id="workers.down", tooltip="workers −1 (live: SIGTTOU)"),
        Binding("right_square_bracket", "pool_max(1)", "pool max +", show=False, id="pool.max.up",
                tooltip="pool max +1 per worker (pending: applied by a restart)"),
        Binding("left_square_bracket", "pool_max(-1)", "pool max −", show=False, id="pool.max.down",
                tooltip="pool max −1 per worker (pending)"),
        Binding("right_curly_bracket", "pool_min(1)", "pool min +", show=False, id="pool.min.up",
                tooltip="pool min +1 per worker (pending)"),
        Binding("left_curly_bracket", "pool_min(-1)", "pool min −", show=False, id="pool.min.down",
                tooltip="pool min −1 per worker (pending)"),
        Binding("d", "db_mode", "db mode", id="db.mode",
                tooltip="database mode: pool ↔ a connection per request (pending)"),
        Binding("l", "access_log", "access log", show=False, id="access.log",
                tooltip="uvicorn's access log on/off (pending)"),
        Binding("a", "apply", "apply", id="apply",
                tooltip="apply the pending changes: restarts the app (also restarts an app or load generator that "
                        "exited); the users come back at the spawn rate"),
        Binding("space", "pause", "pause", id="pause", tooltip="pause / resume the load (replay: play / pause)"),
        Binding("c", "scenario", "scenario", id="scenario", tooltip="choose a scenario (restarts the load generator)"),
        Binding("m", "mark", "mark", show=False, id="mark", tooltip="mark this moment with a note"),
        Binding("p", "confirm", "py-spy", id="confirm",
                tooltip="confirm the diagnosis: py-spy stack dump of the busiest workers"),
        Binding("x", "save_svg", "screenshot", show=False, id="screenshot", tooltip="save a screenshot (SVG)"),
        Binding("question_mark", "help", "help", id="help", tooltip="this help"),
        Binding("q", "quit_app", "quit", id="quit", tooltip="quit (stops everything loadtui started)"),
        Binding("right", "step(1)", "step", id="replay.step", tooltip="one second forward (pauses)"),
        Binding("left", "step(-1)", "back", id="replay.back", tooltip="one second back (pauses)"),
        Binding("greater_than_sign", "speed(2)", "faster", id="replay.faster", tooltip="play twice as fast"),
        Binding("less_than_sign", "speed(0.5)", "slower", id="replay.slower", tooltip="play half as fast"),
        Binding("home", "seek(0)", "start", show=False, id="replay.start", tooltip="jump to the start"),
        Binding("end", "seek(-1)", "end", show=False, id="replay.end", tooltip="jump to the end"),
    ]  # fmt: skip

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Live keys exist only live and replay keys only in a replay: hidden from the footer and disabled."""
        if self.replay is not None and action in LIVE_ONLY:
            return False
        return not (self.replay is None and action in REPLAY_ONLY)

    def __init__(self, *, session: Session | None = None, replay: SessionLog | None = None,
                 config: RunConfig | None = None, speed: float = 1.0) -> None:  # fmt: skip
        super().__init__()
        self.session = session
        self.controller: SessionController | None = None
        self.replay = ReplayState(replay, speed=speed) if replay is not None else None
        self.applied: RunConfig = (
            (session.config if session else None) or config or (replay.config if replay else RunConfig())
        )
        self.pending: RunConfig = self.applied
        self.status = "starting…" if session else ""
        self.job_started: float | None = time.monotonic() if session else None
        """When the running control job (start-up, restart...) began; None when none runs."""
        self.last_tick: Tick | None = None
        self.ticks_seen = 0
        self.exit_status = 0
        self.open_error: str | None = None
        """Why the session could not start, if it could not."""

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
                yield LoadgenPanel()
                yield EventsPanel()
        yield Footer()

    def on_mount(self) -> None:
        self._render_config()
        self.on_resize()
        self.set_interval(0.5, self._tick_spinner)
        if self.session is not None:
            self.session.subscribe(on_tick=lambda t: self.post_message(TickArrived(t)),
                                   on_event=lambda e: self.post_message(EventArrived(e)))  # fmt: skip
            self.controller = SessionController(
                self.session,
                on_done=self._job_done,
                progress=lambda text: self.post_message(Progress(text)),
            )
            self.controller.start()
        elif self.replay is not None:
            self.title = f"loadtui replay · {self.replay.log.path.name}"
            for ev in self.replay.log.events[:0]:
                self.query_one(EventsPanel).add(ev)
            self.set_interval(0.05, self._replay_step)
            self._replay_clock = 0.0

    async def on_unmount(self) -> None:
        """However the app ends, the session ends with it (stopping everything it started)."""
        if self.controller is not None and not self.controller.closed.is_set():
            await asyncio.to_thread(self.controller.close)

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
            self.query_one(LoadPanel).show(tick)
            self.query_one(EndpointsPanel).show(tick)
            self.query_one(AppPanel).show(tick)
            self.query_one(LoadgenPanel).show(tick)
            self.query_one(DatabasePanel).show(tick)
            self.query_one(DiagnosisPanel).show(tick, judged=self.ticks_seen >= 8)
            if self.session is None:
                self._render_status()

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
        text = Text()
        text.append(f" ✗ {event.kind.replace('-', ' ')}: ", style="bold red")
        text.append(event.message + "\n")
        for line in event.data.get("log_tail") or []:
            text.append(f"   app │ {line[:200]}\n", style="dim")
        text.append("   Fix the setting (] [ } { d l) and press a to apply again, or q to quit.", style="italic")
        problem.update(text)
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
        self.job_started = None
        if self.session is not None:
            self.applied = self.session.config
            self.pending = self.session.pending
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
                self.notify(message.message, title=f"{message.name} failed", severity="error", timeout=15)
        self._render_config()
        self._render_status()

    # -- header ------------------------------------------------------------------------------------------------

    def _render_config(self) -> None:
        c = self.applied
        text = Text()
        text.append(" applied ", style="reverse")
        scenario = c.scenario if c.locustfile is None else Path(c.locustfile).name
        pool = f"pool {c.pool_min}–{c.pool_max}" if c.db_mode == "pool" else "connection per request"
        text.append(f" {scenario} · {c.users} users · {c.workers} worker(s) · {pool} · access log "
                    f"{'on' if c.access_log else 'off'} · sleep {c.sleep_ms} ms")  # fmt: skip
        pending = {f: getattr(self.pending, f) for f in ("pool_min", "pool_max", "db_mode", "access_log", "scenario")
                   if getattr(self.pending, f) != getattr(c, f)}  # fmt: skip
        if pending:
            text.append("   pending ", style="reverse yellow")
            text.append(" " + ", ".join(f"{k.replace('_', ' ')} → {v}" for k, v in pending.items()), style="yellow")
            text.append("  (press a to apply)", style="dim")
        self.query_one("#config-bar", Static).update(text)

    def _render_status(self) -> None:
        text = Text()
        if self.replay is not None:
            r = self.replay
            total = len(r.log.ticks)
            text.append(f" replay {min(r.index, total)}/{total} s · {'playing' if r.playing else 'paused'} · "
                        f"{r.speed:g}×", style="bold")  # fmt: skip
            if r.log.truncated:
                text.append(" · log was cut off (killed session)", style="yellow")
        elif self.job_started is not None:
            spinner = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"[int(time.monotonic() * 2) % 10]
            text.append(f" {spinner} {self.status}", style="bold yellow")
            text.append(f" {time.monotonic() - self.job_started:.0f} s", style="dim")
        else:
            text.append(f" {self.status}", style="bold")
        self.query_one("#status-bar", Static).update(text)

    # -- live actions ------------------------------------------------------------------------------------------

    def _submit(self, name: str, job: Any, ack: str) -> None:
        if self.controller is None:
            self.notify("replay: the session is not live", severity="warning")
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
        """Change the user count (live)."""
        users = max(0, self.pending.users + delta)
        self.pending = dataclasses.replace(self.pending, users=users)
        self._render_config()
        self._submit("users", lambda s: s.set_users(users), f"users → {users}")

    def action_workers(self, delta: int) -> None:
        """Change the worker count (live)."""
        workers = max(1, self.pending.workers + delta)
        if workers == self.pending.workers:
            self.notify("at least one worker", severity="warning")
            return
        self.pending = dataclasses.replace(self.pending, workers=workers)
        self._submit("workers", lambda s: s.set_workers(workers), f"workers → {workers}…")

    def _propose(self, **changes: Any) -> None:
        try:
            candidate = self.pending.replace(**changes)
        except Exception as exc:
            self.notify(str(exc), severity="warning")
            return
        self.pending = candidate
        self._render_config()
        if self.controller is not None:
            self.controller.submit("propose", lambda s: s.propose(**changes) and None)

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
        self._submit("apply", lambda s: s.apply(target, progress=lambda t: self.post_message(Progress(t))),
                     "applying…")  # fmt: skip

    def action_pause(self) -> None:
        """Pause or resume the load (or the replay)."""
        if self.replay is not None:
            self.replay.playing = not self.replay.playing
            self._render_status()
            return
        if self.session is None:
            return
        if self.session.paused:
            self._submit("resume", lambda s: s.resume(), "resuming…")
        else:
            self._submit("pause", lambda s: s.pause(), "pausing…")

    def action_scenario(self) -> None:
        """Choose a scenario."""
        if self.replay is not None:
            return

        def chosen(name: str | None) -> None:
            if name:
                self.pending = dataclasses.replace(self.pending, scenario=name)
                target = self.pending
                self._render_config()
                self._submit("scenario", lambda s: s.apply(target), f"scenario → {name}…")

        self.push_screen(ScenarioScreen(), chosen)

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
        """Save an SVG screenshot in the current directory."""
        path = self.save_screenshot()
        self.notify(f"saved {path}")

    def action_help(self) -> None:
        """Show the help screen."""
        self.push_screen(HelpScreen())

    async def action_quit_app(self) -> None:
        """Stop everything and quit."""
        self.status = "stopping everything loadtui started…"
        self._render_status()
        if self.controller is not None:
            await asyncio.to_thread(self.controller.close)
        self.exit(self.exit_status)

    # -- replay ------------------------------------------------------------------------------------------------

    def _replay_step(self) -> None:
        r = self.replay
        if r is None or not r.playing or r.index >= len(r.log.ticks):
            return
        self._replay_clock += 0.05 * r.speed
        while r.index < len(r.log.ticks) and self._replay_clock >= 1.0:
            self._replay_clock -= 1.0
            self._emit_replay(r.index)
            r.index += 1

    def _emit_replay(self, index: int) -> None:
        assert self.replay is not None
        log = self.replay.log
        tick = log.ticks[index]
        previous_t = log.ticks[index - 1].t if index > 0 else -1.0
        for ev in log.events:
            if previous_t < ev.t <= tick.t:
                self.post_message(EventArrived(ev))
                if ev.kind in ("config", "applied") and "config" in ev.data:
                    self.applied = self.pending = RunConfig.from_dict(ev.data["config"])
                    self._render_config()
        self.post_message(TickArrived(tick))

    def action_step(self, delta: int) -> None:
        """Replay: one second forward or back (pauses)."""
        r = self.replay
        if r is None or not r.log.ticks:
            return
        r.playing = False
        r.index = max(0, min(len(r.log.ticks) - 1, r.index + delta))
        self._emit_replay(r.index)
        self._render_status()

    def action_speed(self, factor: float) -> None:
        """Replay: faster or slower."""
        if self.replay is not None:
            self.replay.speed = max(0.25, min(64.0, self.replay.speed * factor))
            self._render_status()

    def action_seek(self, index: int) -> None:
        """Replay: jump to the start or the end."""
        r = self.replay
        if r is None or not r.log.ticks:
            return
        r.index = 0 if index == 0 else len(r.log.ticks) - 1
        self._emit_replay(r.index)
        self._render_status()


def create_app(*, config: RunConfig | None = None, replay: SessionLog | None = None, speed: float = 1.0,
               live: bool = False) -> LoadtuiApp:  # fmt: skip
    """The one factory for the dashboard, used by the CLI and the tests.

    `live=True` starts a real Session for `config`; without it the screen shows `config` and renders the Ticks it is
    given (Pilot tests); with `replay`, the recorded session plays through the same path.
    """
    if replay is not None:
        return LoadtuiApp(replay=replay, speed=speed)
    session = Session(config or RunConfig()) if live else None
    return LoadtuiApp(session=session, config=config)


SIGNAL_GRACE_S = 10.0
"""After SIGTERM/SIGHUP, the process leaves at the latest this long after everything it started was stopped."""


def _install_signal_handlers(app: LoadtuiApp) -> None:
    """Textual installs no SIGTERM/SIGHUP handler: quit cleanly on them, stopping what we started."""
    loop = asyncio.get_running_loop()

    def handler(signum: int, _frame: Any) -> None:
        # Exit the UI at once (the terminal may be gone); run_dashboard's finally then stops the session.
        loop.call_soon_threadsafe(app.exit, 128 + signum)
        # With the terminal gone, Textual's shutdown can block for good writing to it (seen after a closed
        # terminal: its writer queue never drains). So stop what we started right now, off the UI, and leave
        # even if the UI never returns: the session log is complete by then.
        threading.Thread(target=_stop_then_leave, args=(app, 128 + signum), daemon=True).start()

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, handler)


def _stop_then_leave(app: LoadtuiApp, status: int) -> None:
    if app.controller is not None:
        app.controller.close()
    elif app.session is not None:
        app.session.close()
    time.sleep(SIGNAL_GRACE_S)
    os._exit(status)


def run_dashboard(config: RunConfig) -> int:
    """`loadtui`: the live dashboard. Returns the exit status."""
    app = create_app(config=config, live=True)
    session = app.session
    assert session is not None

    async def main() -> int | None:
        _install_signal_handlers(app)
        return await app.run_async()

    try:
        status = asyncio.run(main())
    finally:
        if app.controller is not None and not app.controller.closed.is_set():
            app.controller.close()
        elif app.controller is None:
            session.close()
    if app.open_error is not None:
        sys.stderr.write(f"loadtui: {app.open_error}\n")
    if session.recorder is not None:
        sys.stderr.write(f"loadtui: session log {session.record_path}\n")
    return int(status or app.exit_status)


def run_replay(log: SessionLog, speed: float = 1.0) -> int:
    """`loadtui replay FILE`."""
    app = create_app(replay=log, speed=speed)
    return int(app.run() or 0)
