"""The dashboard's keys: one declared binding each, which mode has it, and the help page built from them.

Keys follow Locust's headless keys for users (DESIGN 3.3). A binding's tooltip is its line in the help screen, so
the help cannot drift from what the keys do. Live keys exist only on a live session, replay keys only in a replay
(:meth:`LoadtuiApp.check_action` hides and disables the others).
"""

from __future__ import annotations

from typing import Any

from textual.app import App
from textual.binding import Binding

HELP_NOTES = """\
**applied** is the configuration running now; **pending** (yellow) are changes that need a restart of the app: they
take effect when you press `a`. Users, workers and pause apply at once. After a worker change or a restart loadtui
moves the users' keep-alive connections so each worker gets its share (`--no-rebalance` to study stickiness).

Latencies come from Locust's histogram: whole milliseconds below 100 ms, two significant digits above
(147 ms is counted as 150 ms). Per-second figures are deltas between two seconds, not Locust's 10-second averages.
"""

LIVE_ONLY = frozenset(
    {
        "users",
        "workers",
        "pool_max",
        "pool_min",
        "db_mode",
        "access_log",
        "apply",
        "scenario",
        "mark",
        "confirm",
        "skip_step",
        "end_plan",
    }
)
"""Actions that change or probe a running session: disabled and hidden in a replay."""

REPLAY_ONLY = frozenset({"step", "speed", "seek"})
"""Actions that move through a recording: hidden while live."""


BINDINGS: list[Binding | tuple[str, str] | tuple[str, str, str]] = [
    # First, so the footer shows them however narrow the terminal (it cuts from the right).
    Binding("question_mark", "help", "help", id="help", tooltip="this help"),
    Binding("q", "quit_app", "quit", id="quit", tooltip="quit (stops everything loadtui started)"),
    Binding("f", "findings", "findings", id="findings", tooltip="the findings in full: evidence, advice, stack sample"),
    Binding(
        "pagedown",
        "page(1)",
        "page down",
        show=False,
        id="page.down",
        tooltip="scroll the panels down (80×24: one column)",
    ),
    Binding("pageup", "page(-1)", "page up", show=False, id="page.up", tooltip="scroll the panels up"),
    Binding("w", "users(1)", "users +1", id="users.up", tooltip="users +1 (live); with --rate: rate +10%"),
    Binding("W", "users(10)", "+10", show=False, id="users.up10", tooltip="users +10 (live); with --rate: rate ×2"),
    Binding("s", "users(-1)", "users −1", id="users.down", tooltip="users −1 (live); with --rate: rate −10%"),
    Binding("S", "users(-10)", "−10", show=False, id="users.down10", tooltip="users −10 (live); with --rate: rate ÷2"),
    Binding(
        "plus",
        "workers(1)",
        "workers +",
        id="workers.up",
        tooltip="workers +1 (live: SIGTTIN; the users' connections are then spread over the workers)",
    ),
    Binding("minus", "workers(-1)", "workers −", id="workers.down", tooltip="workers −1 (live: SIGTTOU)"),
    Binding(
        "right_square_bracket",
        "pool_max(1)",
        "pool max +",
        show=False,
        id="pool.max.up",
        tooltip="pool max +1 per worker (pending: applied by a restart)",
    ),
    Binding(
        "left_square_bracket",
        "pool_max(-1)",
        "pool max −",
        show=False,
        id="pool.max.down",
        tooltip="pool max −1 per worker (pending)",
    ),
    Binding(
        "right_curly_bracket",
        "pool_min(1)",
        "pool min +",
        show=False,
        id="pool.min.up",
        tooltip="pool min +1 per worker (pending)",
    ),
    Binding(
        "left_curly_bracket",
        "pool_min(-1)",
        "pool min −",
        show=False,
        id="pool.min.down",
        tooltip="pool min −1 per worker (pending)",
    ),
    Binding(
        "d", "db_mode", "db mode", id="db.mode", tooltip="database mode: pool ↔ a connection per request (pending)"
    ),
    Binding(
        "l", "access_log", "access log", show=False, id="access.log", tooltip="uvicorn's access log on/off (pending)"
    ),
    Binding(
        "a",
        "apply",
        "apply",
        id="apply",
        tooltip="apply the pending changes: restarts the app (also restarts an app or load generator that "
        "exited); the users come back at the spawn rate",
    ),
    Binding("space", "pause", "pause", id="pause", tooltip="pause / resume the load (replay: play / pause)"),
    Binding("c", "scenario", "scenario", id="scenario", tooltip="choose a scenario (restarts the load generator)"),
    Binding("m", "mark", "mark", show=False, id="mark", tooltip="mark this moment with a note"),
    Binding(
        "p",
        "confirm",
        "py-spy",
        id="confirm",
        tooltip="confirm the diagnosis: py-spy stack dump of the busiest workers",
    ),
    Binding("n", "skip_step", "next step", show=False, id="plan.skip", tooltip="plan: end this step now, go on"),
    Binding(
        "e",
        "end_plan",
        "end plan",
        show=False,
        id="plan.end",
        tooltip="plan: stop it and give the verdict of the steps measured so far (a change by hand does too)",
    ),
    Binding("x", "save_svg", "screenshot", show=False, id="screenshot", tooltip="save a screenshot (SVG)"),
    Binding("right", "step(1)", "step", id="replay.step", tooltip="one second forward (pauses)"),
    Binding("left", "step(-1)", "back", id="replay.back", tooltip="one second back (pauses)"),
    Binding("greater_than_sign", "speed(2)", "faster", id="replay.faster", tooltip="play twice as fast"),
    Binding("less_than_sign", "speed(0.5)", "slower", id="replay.slower", tooltip="play half as fast"),
    Binding("home", "seek(0)", "start", show=False, id="replay.start", tooltip="jump to the start"),
    Binding("end", "seek(-1)", "end", show=False, id="replay.end", tooltip="jump to the end"),
]


def live_keys() -> frozenset[str]:
    """The keys of the live-only actions (a replay answers them with one line: it is read-only)."""
    return frozenset(
        key
        for b in BINDINGS
        if isinstance(b, Binding) and b.action.split("(")[0] in LIVE_ONLY
        for key in b.key.split(",")
    )


def help_text(app: App[Any]) -> str:
    """The help page of the app's current mode, built from its bindings (so it cannot drift from them)."""
    replay = getattr(app, "replay", None) is not None
    rows = []
    for binding in BINDINGS:
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


def step_rate(rate: float, delta: int) -> float:
    """The arrival rate after a users key in rate mode: `w`/`s` ±10% (at least 1 req/s), `W`/`S` double and halve."""
    if abs(delta) >= 10:
        new = rate * 2 if delta > 0 else rate / 2
    else:
        step = max(1.0, rate * 0.1)
        new = rate + step if delta > 0 else rate - step
    return max(0.0, round(new, 1))
