"""Snapshots of the main screen (pytest-textual-snapshot) at 80×24 and 160×48.

The screen is fed fixed synthetic seconds and events, so nothing depends on the wall clock: every time on screen is
the session time carried by the Tick or Event (the frozen clock). Update after an intended change with
`pytest tests/tui/test_snapshots.py --snapshot-update` and look at the SVGs before committing them.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from textual.pilot import Pilot

from loadtui.config import RunConfig
from loadtui.model import EndpointStats, Event, Finding
from loadtui.tui.app import create_app
from loadtui.tui.messages import EventArrived, TickArrived
from tests.helpers import tick

FINDING = Finding(
    "pool-exhausted", "warning", "The connection pool is exhausted",
    "40 requests waiting for a connection across 2 workers; PostgreSQL uses 20 of 97 connections",
    "raise pool max (] then a), or add workers (+)",
)  # fmt: skip


async def feed(pilot: Pilot[Any]) -> None:
    app = pilot.app
    app.post_message(EventArrived(Event(0.4, "session-started", "session started; recording to session.jsonl")))
    app.post_message(EventArrived(Event(1.2, "app-started", "app ready on http://127.0.0.1:8000 with 2 worker(s)")))
    endpoints = [
        EndpointStats("GET", "/tasks/", 610.0, 0.0, 9.0, 31.0, 48.0),
        EndpointStats("GET", "/tasks/{id}", 215.0, 0.0, 7.0, 22.0, 40.0),
        EndpointStats("POST", "/tasks/", 220.0, 1.0, 12.0, 38.0, 61.0),
    ]
    for i in range(12):
        t = tick(float(i + 2), rps=1045.0 + 10 * (i % 4), p50=9.0, p95=31.0 + i % 3, worker_cpu=[96.0, 41.0 + i],
                 db_conns=22, active=6, pool_waiting=20 if i > 8 else 0, findings=[FINDING] if i > 8 else None)  # fmt: skip
        t = dataclasses.replace(t, endpoints=endpoints)
        app.post_message(TickArrived(t))
        await pilot.pause()
    app.post_message(EventArrived(Event(11.0, "finding-started", FINDING.title)))
    await pilot.pause()


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])
def test_main_screen(snap_compare: Any, size: tuple[int, int]) -> None:
    app = create_app(config=RunConfig(workers=2, users=50, pool_min=2, pool_max=10))
    assert snap_compare(app, terminal_size=size, run_before=feed)
