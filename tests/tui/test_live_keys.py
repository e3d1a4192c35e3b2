"""Pilot tests on a live session (embedded PostgreSQL, the sample app, Locust): every key changes the RunConfig
it should, and a failed restart is shown with the app's own words and can be fixed and retried."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import OptionList, Static

from loadtui.config import RunConfig
from loadtui.session.core import Session
from loadtui.tui.app import LoadtuiApp, create_app

pytestmark = pytest.mark.integration


async def until(pilot: Pilot[Any], condition: Callable[[], object], what: str, timeout: float = 30) -> None:
    """Let the app run until `condition` holds, or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await pilot.pause(0.1)


@contextlib.asynccontextmanager
async def live_numbers(config: RunConfig) -> AsyncIterator[tuple[LoadtuiApp, Session, Pilot[Any]]]:
    """The dashboard on a real session, once it shows requests flowing."""
    app = create_app(config=config, live=True)
    session = app.session
    assert session is not None
    async with app.run_test(size=(160, 48)) as pilot:
        await until(pilot, lambda: app.controller is not None and app.controller.opened.is_set(), "the session")
        await until(pilot, lambda: app.last_tick is not None and app.last_tick.rps > 0, "live numbers")
        yield app, session, pilot


def screen_text(app: LoadtuiApp, selector: str) -> str:
    return str(app.query_one(selector, Static).render())


async def test_every_key_changes_the_run_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # x saves its screenshot beside the session log, not here
    config = RunConfig(workers=1, users=2, spawn_rate=50, pool_min=2, pool_max=4, record=str(tmp_path / "s.jsonl"))
    async with live_numbers(config) as (app, session, pilot):

        async def press(key: str, condition: Callable[[Session], object], what: str) -> None:
            await pilot.press(key)
            await until(pilot, lambda: condition(session), f"{key!r}: {what}")

        await press("w", lambda s: s.config.users == 3, "users 3")
        await press("W", lambda s: s.config.users == 13, "users 13")
        await press("s", lambda s: s.config.users == 12, "users 12")
        await press("S", lambda s: s.config.users == 2, "users 2")
        await press(
            "plus",
            lambda s: s.config.workers == 2 and s.children.app is not None and len(s.children.app.worker_pids()) == 2,
            "2 workers",
        )
        await press(
            "minus",
            lambda s: s.config.workers == 1 and s.children.app is not None and len(s.children.app.worker_pids()) == 1,
            "1 worker",
        )
        # Pool and app settings are pending until applied: the applied config does not move.
        await press("right_square_bracket", lambda s: s.changes.pending.pool_max == 5, "pool max 5 pending")
        await press("right_square_bracket", lambda s: s.changes.pending.pool_max == 6, "pool max 6 pending")
        await press("left_square_bracket", lambda s: s.changes.pending.pool_max == 5, "pool max 5 pending")
        await press("right_curly_bracket", lambda s: s.changes.pending.pool_min == 3, "pool min 3 pending")
        await press("left_curly_bracket", lambda s: s.changes.pending.pool_min == 2, "pool min 2 pending")
        await press("d", lambda s: s.changes.pending.db_mode == "per-request", "per-request pending")
        await press("d", lambda s: s.changes.pending.db_mode == "pool", "pool pending")
        await press("l", lambda s: s.changes.pending.access_log, "access log pending")
        assert session.config.pool_max == 4 and not session.config.access_log
        bar = screen_text(app, "#config-bar")  # applied and pending apart; the session owns what is pending
        assert "pool 2–4" in bar and "pending (a applies)" in bar and "pool max 5" in bar and "access log on" in bar
        await pilot.press("left_curly_bracket", "left_curly_bracket", "left_curly_bracket")  # below 0: refused
        await until(pilot, lambda: session.changes.pending.pool_min == 0, "pool min 0 pending, never below")
        await pilot.press("right_curly_bracket", "right_curly_bracket")
        await until(pilot, lambda: session.changes.pending.pool_min == 2, "fast presses add up")
        await press("a", lambda s: s.config.pool_max == 5 and s.config.access_log, "applied after restart")
        await until(pilot, lambda: "pending" not in screen_text(app, "#config-bar"), "no pending changes shown")
        await pilot.press("a")  # nothing pending: said, not done
        await until(pilot, lambda: any("nothing to apply" in str(n.message) for n in app._notifications), "a warning")
        assert [e.kind for e in session.events].count("applied") == 1
        await press("space", lambda s: s.changes.paused, "paused")
        await press("space", lambda s: not s.changes.paused, "resumed")
        await pilot.press("c")
        await until(pilot, lambda: app.screen.__class__.__name__ == "ScenarioScreen", "the scenario picker")
        assert app.screen.query_one(OptionList).highlighted == 0  # opens on the scenario running: crud
        app.screen.query_one(OptionList).highlighted = 1  # ping
        await press("enter", lambda s: s.config.scenario == "ping", "scenario ping")
        await pilot.press("m")
        await until(pilot, lambda: app.screen.__class__.__name__ == "MarkScreen", "the mark prompt")
        await pilot.press(*"before", "enter")
        await until(pilot, lambda: any(e.kind == "mark" and e.message == "before" for e in session.events), "mark")
        await pilot.press("x")
        await until(pilot, lambda: list(tmp_path.glob("*.svg")), "an SVG screenshot beside the session log")
        assert not list(elsewhere.glob("*.svg"))
        await pilot.press("question_mark")
        await until(pilot, lambda: app.screen.__class__.__name__ == "HelpScreen", "help")
        await pilot.press("escape", "q")
        await until(pilot, lambda: session.closed, "the session to close", timeout=40)
    kinds = [e.kind for e in session.events]
    assert {"workers", "restart", "applied", "paused", "resumed", "mark"} <= set(kinds)
    segments = [e.data["segment"] for e in session.events if "segment" in e.data]
    assert len(segments) == len(set(segments)) == 9, kinds  # each change is one event, never config: and applied: both


FLAKY_APP = """
import os, sys
import uvicorn
if os.path.exists(sys.argv[2]):
    print("flaky: refusing to start: settings file is broken", flush=True)
    sys.exit(3)

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"ok"})

uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""


async def test_a_failed_restart_shows_why_and_can_be_retried(tmp_path: Path) -> None:
    script = tmp_path / "flaky.py"
    script.write_text(FLAKY_APP)
    broken = tmp_path / "broken"
    command = f"{sys.executable} {script} {{port}} {broken}"
    config = RunConfig(app=command, users=1, scenario="ping", record=str(tmp_path / "s.jsonl"))
    app = create_app(config=config, live=True)
    session = app.session
    assert session is not None
    async with app.run_test(size=(160, 48)) as pilot:
        await until(pilot, lambda: app.controller is not None and app.controller.opened.is_set(), "the session")
        broken.touch()
        await pilot.press("l", "a")
        problem = app.query_one("#problem", Static)
        await until(pilot, lambda: problem.display, "the failure on screen")
        shown = screen_text(app, "#problem")
        assert "refusing to start: settings file is broken" in shown, shown
        assert "press a to apply again" in shown
        assert not session.config.access_log and session.changes.pending.access_log
        assert "pending" in screen_text(app, "#config-bar")
        # Fix it and retry: the same key applies, the message goes away.
        broken.unlink()
        await pilot.press("a")
        await until(pilot, lambda: session.config.access_log and not problem.display, "a successful retry")
        await until(pilot, lambda: app.last_tick is not None and app.last_tick.workers, "the app measured again")
        await pilot.press("q")
        await until(pilot, lambda: session.closed, "the session to close", timeout=40)
    assert [e.kind for e in session.events].count("restart-failed") == 1


async def test_a_crashed_app_comes_back_with_a(tmp_path: Path) -> None:
    import os
    import signal

    config = RunConfig(workers=2, users=2, spawn_rate=50, scenario="ping", record=str(tmp_path / "s.jsonl"))
    async with live_numbers(config) as (app, session, pilot):
        assert session.children.app is not None and session.children.app._proc is not None
        os.kill(session.children.app._proc.pid, signal.SIGKILL)  # the app's supervisor dies
        await until(pilot, lambda: any(e.kind == "app-exited" for e in session.events), "the exit noticed")
        problem = app.query_one("#problem", Static)
        await until(pilot, lambda: problem.display, "the failure on screen")
        # Its orphaned workers are stopped too: nothing answers any more (every request fails).
        await until(pilot, lambda: app.last_tick is not None and app.last_tick.rps > 0
                    and app.last_tick.fail_rps == app.last_tick.rps and not app.last_tick.workers, "the workers gone")  # fmt: skip
        await pilot.press("a")
        await until(pilot, lambda: session.children.app is not None and session.children.app.alive, "the app restarted")
        await until(pilot, lambda: app.last_tick is not None and app.last_tick.rps > 0
                    and app.last_tick.fail_rps == 0 and len(app.last_tick.workers) == 2, "numbers back from two workers")  # fmt: skip
        assert not problem.display
        assert any(e.kind == "restart" and "exited" in e.message for e in session.events)
        await pilot.press("q")
        await until(pilot, lambda: session.closed, "the session to close", timeout=40)


async def test_q_during_a_restart_that_never_gets_ready_quits_within_5_s(tmp_path: Path) -> None:
    script = tmp_path / "hangs.py"
    # Starts normally; once `hang` exists, a new start never listens (stuck in its own start-up).
    stuck = "import time\n    time.sleep(3600)"
    script.write_text(
        FLAKY_APP.replace('print("flaky: refusing to start: settings file is broken", flush=True)', stuck)
    )
    hang = tmp_path / "hang"
    log = tmp_path / "s.jsonl"
    config = RunConfig(app=f"{sys.executable} {script} {{port}} {hang}", users=1, scenario="ping", record=str(log))
    async with live_numbers(config) as (app, session, pilot):
        hang.touch()
        await pilot.press("l", "a")
        await until(pilot, lambda: "starting the app" in app.status, "the restart waiting for the app")
        began = time.monotonic()
        await pilot.press("q")
        await until(pilot, lambda: session.closed, "the session to close", timeout=5)
        took = time.monotonic() - began
    assert took < 5, took
    assert '"type":"summary"' in log.read_text()
