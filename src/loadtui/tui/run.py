"""Entry points of the dashboard (`loadtui`, `loadtui replay FILE`) and its signal handling."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
import time
from typing import Any

from loadtui.config import RunConfig
from loadtui.results.recorder import SessionLog
from loadtui.results.verdict import Slo
from loadtui.session.plan import DEFAULT_STEP_S, Plan
from loadtui.tui.app import LoadtuiApp, create_app

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


def run_dashboard(
    config: RunConfig,
    plan: Plan | None = None,
    slos: list[Slo] | None = None,
    step_s: float = DEFAULT_STEP_S,
    baseline: SessionLog | None = None,
) -> int:
    """`loadtui`: the live dashboard (running the sweep `plan`, if any; the live figures against `baseline`, if
    given). Returns the exit status."""
    app = create_app(config=config, live=True, plan=plan, slos=slos, step_s=step_s, baseline=baseline)
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
