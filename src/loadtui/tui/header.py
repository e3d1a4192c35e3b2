"""The dashboard's header lines and its problem box, as text from plain values (no widgets: tested as strings)."""

from __future__ import annotations

import time
from pathlib import Path

from rich.text import Text

from loadtui.config import SLEEP_SCENARIOS, RunConfig
from loadtui.model import Event
from loadtui.results.verdict import describe
from loadtui.tui.replay import ReplayPlayer

RESTART_FIELDS_SHOWN = ("pool_min", "pool_max", "db_mode", "access_log", "scenario")
"""Settings that wait for `a`: shown as pending until applied."""


def config_line(applied: RunConfig, pending: RunConfig, replay: bool) -> Text:
    """What runs (only the settings that apply to it), then what waits for `a`."""
    c = applied
    text = Text()
    text.append(" replay " if replay else " applied ", style="reverse")
    scenario = c.scenario if c.locustfile is None else Path(c.locustfile).name
    if c.sample_app:
        pool = f"pool {c.pool_min}–{c.pool_max}" if c.db_mode == "pool" else "connection per request"
        # The sleep length is the unit of work of the sleep scenarios and the slow query only.
        sleep = f" · sleep {c.sleep_ms} ms" if c.locustfile is None and c.scenario in SLEEP_SCENARIOS else ""
        settings = f" · {pool} · access log {'on' if c.access_log else 'off'}{sleep}"
    else:  # the pool, access-log and sleep settings are the sample app's: another app has its own
        settings = f" · {c.host}" if c.host else " · your app (--app)"
    load = f"{c.rate:g} req/s {c.arrivals}" if c.rate is not None else f"{c.users} users"
    text.append(f" {scenario} · {load} · {c.workers} worker(s){settings}")
    waiting = {f: getattr(pending, f) for f in RESTART_FIELDS_SHOWN if getattr(pending, f) != getattr(c, f)}
    if waiting:
        # The key first: however many changes are pending, "a applies" is never the part that is cut off.
        text.append("   pending (a applies) ", style="reverse yellow")
        text.append(" " + describe(waiting), style="yellow")
    return text


def status_line(status: str, replay: ReplayPlayer | None, job_started: float | None) -> Text:
    """A replay's position, a job under way (with a spinner and its seconds), or the last outcome."""
    text = Text()
    if replay is not None:
        total = replay.total
        state = "ended" if replay.index >= total else "playing" if replay.playing else "paused"
        text.append(f" replay {min(replay.index, total)}/{total} s · {state} · {replay.speed:g}× · read-only", "bold")
        if replay.log.truncated:
            text.append(" · log was cut off (killed session)", style="yellow")
    elif job_started is not None:
        spinner = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"[int(time.monotonic() * 2) % 10]
        text.append(f" {spinner} {status}", style="bold yellow")
        text.append(f" {time.monotonic() - job_started:.0f} s", style="dim")
    else:
        text.append(f" {status}", style="bold")
    return text


def problem_text(event: Event) -> Text:
    """A failure kept on screen with the app's own last lines, and what to do."""
    text = Text()
    text.append(f" ✗ {event.kind.replace('-', ' ')}: ", style="bold red")
    text.append(event.message + "\n")
    for line in event.data.get("log_tail") or []:
        text.append(f"   app │ {line[:200]}\n", style="dim")
    text.append("   Fix the setting (] [ } { d l) and press a to apply again, or q to quit.", style="italic")
    return text
