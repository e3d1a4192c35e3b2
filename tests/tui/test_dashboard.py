"""Pilot tests: the real dashboard fed with synthetic and recorded Ticks, asserting what is on screen."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import pytest
from textual.widgets import Static

from loadtui.config import RunConfig
from loadtui.model import Finding
from loadtui.results.recorder import Recorder, read_log
from loadtui.tui.app import LoadtuiApp, create_app
from loadtui.tui.messages import TickArrived
from loadtui.tui.widgets import TextTable
from tests.helpers import tick


def text_of(app: LoadtuiApp, selector: str) -> str:
    return str(app.query_one(selector, Static).render())


async def test_panels_show_the_numbers_of_a_tick() -> None:
    app = create_app(config=RunConfig(workers=2))
    finding = Finding("pool-exhausted", "warning", "The connection pool is exhausted", "40 requests waiting", "raise ]")
    async with app.run_test(size=(160, 48)) as pilot:
        for i in range(8):
            app.post_message(TickArrived(tick(float(i), rps=1234.5, p50=12.0, p95=48.0, worker_cpu=[61.0, 59.0],
                                              db_conns=22, findings=[finding] if i == 7 else None)))  # fmt: skip
        await pilot.pause()
        assert "1,234.5 req/s" in text_of(app, "#load-numbers") and "p95 48 ms" in text_of(app, "#load-numbers")
        workers = app.query_one("#worker-table", TextTable)
        assert workers.row_count == 2 and workers.rows[0][1] == "61"
        assert "22 of 100 connections" in text_of(app, "#db-numbers")
        assert "The connection pool is exhausted" in text_of(app, "#findings")
        assert "40 requests waiting" in text_of(app, "#findings")


async def test_by_rate_the_load_panel_shows_asked_finished_in_flight_dropped_and_both_latencies() -> None:
    import dataclasses

    from loadtui.model import Latency, OpenLoad

    app = create_app(config=RunConfig(rate=200.0, arrivals="poisson"))
    behind = OpenLoad(200.0, 150.0, 200.0, 3.0, 120, Latency(p50=4.0, p95=9.0, p99=12.0))
    async with app.run_test(size=(80, 24)) as pilot:
        app.post_message(TickArrived(dataclasses.replace(tick(1.0, rps=150.0, p50=800.0, p95=1500.0), open=behind)))
        await pilot.pause()
        load = text_of(app, "#load-numbers")
        assert "rate 200.0/s → done 150.0/s" in load and "in flight 120" in load and "dropped 3.0/s" in load
        assert "from intended start p50 800 ms" in load and "service only" in load and "p95 9 ms" in load
        assert "users" not in load  # the user instances are only the clients arrivals run on
        assert "200 req/s poisson" in text_of(app, "#config-bar")


async def test_no_bottleneck_message_only_after_enough_seconds() -> None:
    app = create_app(config=RunConfig())
    async with app.run_test(size=(160, 48)) as pilot:
        app.post_message(TickArrived(tick(0.0)))
        await pilot.pause()
        assert "no bottleneck" not in text_of(app, "#findings")
        for i in range(1, 9):
            app.post_message(TickArrived(tick(float(i))))
            await pilot.pause()
        assert "no bottleneck detected" in text_of(app, "#findings")


async def test_help_is_built_from_the_live_bindings_and_opens_at_80x24() -> None:
    from loadtui.tui.keys import REPLAY_ONLY, help_text

    app = create_app(config=RunConfig())
    async with app.run_test(size=(80, 24)) as pilot:
        assert app.has_class("narrow")
        await pilot.press("question_mark")
        await pilot.pause()
        assert app.screen.__class__.__name__ == "HelpScreen"
        text = help_text(app)
        for binding in app.BINDINGS:
            name = binding.action.split("(")[0]  # type: ignore[union-attr]
            tip = binding.tooltip  # type: ignore[union-attr]
            assert (tip in text) is (name not in REPLAY_ONLY), binding
        assert (
            "| `w` | users +1 (live); with --rate: rate +10% |" in text and "| `a` | apply the pending changes" in text
        )
        assert "**pending**" in text and "Close this help with `escape`" in text
        assert "one second forward" not in text
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen.__class__.__name__ != "HelpScreen"


async def test_replay_is_read_only(tmp_path: Path) -> None:
    from loadtui.tui.keys import help_text

    path = tmp_path / "s.jsonl"
    rec = Recorder(path)
    rec.header(RunConfig(workers=2), dt.datetime.now(dt.UTC))
    for i in range(5):
        rec.tick(tick(float(i), rps=100.0 + i))
    rec.close()
    app = create_app(replay=read_log(path))
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        footer = " ".join(b.binding.description for b in app.active_bindings.values() if b.binding.show)
        footer_actions = {b.binding.action for b in app.active_bindings.values()}
        for live in ("users(1)", "workers(1)", "apply", "db_mode", "scenario", "confirm", "mark"):
            assert live not in footer_actions, live
        assert "step(1)" in footer_actions and "speed(2)" in footer_actions
        assert "workers" not in footer and "apply" not in footer
        await pilot.press("plus", "right_square_bracket", "d", "a", "w")
        await pilot.pause()
        assert app.pending == app.applied  # nothing pending can be made in a replay
        assert "pending" not in text_of(app, "#config-bar")
        text = help_text(app)
        assert "one second forward" in text and "users +1" not in text and "(replay)" in text
        # It says it is a replay, answers a live key in one line, and ends as ended.
        assert text_of(app, "#config-bar").startswith(" replay ")
        told = [n.message for n in app._notifications]
        assert any("a replay is read-only" in m for m in told), told
        await pilot.press("end")
        deadline = time.monotonic() + 5
        while "ended" not in text_of(app, "#status-bar") and time.monotonic() < deadline:
            await pilot.pause(0.1)  # the last second plays, then the replay has ended
        assert "ended" in text_of(app, "#status-bar") and "read-only" in text_of(app, "#status-bar")


async def test_replay_feeds_recorded_ticks_through_the_same_path(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    rec = Recorder(path)
    rec.header(RunConfig(workers=3), dt.datetime.now(dt.UTC))
    for i in range(5):
        rec.tick(tick(float(i), rps=100.0 + i, worker_cpu=[10.0, 20.0, 30.0]))
    rec.close()
    app = create_app(replay=read_log(path))
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("space", "end")
        await pilot.pause()
        assert "104.0 req/s" in text_of(app, "#load-numbers")
        assert app.query_one("#worker-table", TextTable).row_count == 3
        await pilot.press("left")
        await pilot.pause()
        assert "103.0 req/s" in text_of(app, "#load-numbers")


async def test_retried_requests_are_shown_apart_from_failures() -> None:
    import dataclasses

    app = create_app(config=RunConfig())
    async with app.run_test(size=(160, 48)) as pilot:
        app.post_message(TickArrived(dataclasses.replace(tick(1.0, rps=500.0), retried_rps=3.0)))
        await pilot.pause()
        numbers = text_of(app, "#load-numbers")
        assert "3.0 retried/s" in numbers and "0.0 fail/s" in numbers
        app.post_message(TickArrived(tick(2.0, rps=500.0)))
        await pilot.pause()
        assert "retried" not in text_of(app, "#load-numbers")


async def test_foreign_text_with_brackets_is_shown_as_plain_text() -> None:
    from loadtui.tui.messages import JobFinished

    app = create_app(config=RunConfig())
    async with app.run_test(size=(160, 48)) as pilot:
        text = "the app exited: 1 validation error for Settings [type=int_parsing] at [/tasks/{id}] [/bold]"
        app.post_message(JobFinished("apply", False, text))
        await pilot.pause(0.5)  # the toast is drawn: markup would raise MarkupError here
        assert any(n.message == text for n in app._notifications), list(app._notifications)
        assert text in text_of(app, "#status-bar")


async def test_the_probe_is_shown_beside_the_workers() -> None:
    app = create_app(config=RunConfig())
    async with app.run_test(size=(160, 48)) as pilot:
        app.post_message(TickArrived(tick(1.0, probe_ms=1.5, kept_ms=41.0)))
        await pilot.pause()
        shown = text_of(app, "#app-total")
        assert "probe (a path the app does not route): 2 ms fresh, 41 ms kept alive" in shown, shown
        app.post_message(TickArrived(tick(2.0)))  # --no-probe: nothing about it
        await pilot.pause()
        assert "probe" not in text_of(app, "#app-total")


async def test_the_plan_panel_fills_its_table_and_obeys_skip_and_end() -> None:
    from typing import cast

    from loadtui.results.verdict import parse_slo, parse_vary
    from loadtui.session.core import Session
    from loadtui.session.plan import Plan, PlanRunner
    from tests.unit.test_plan import Stand

    plan = Plan.from_varies([parse_vary("workers=1,2,4")])
    runner = PlanRunner(plan, [parse_slo("p95 < 100 ms")], step_s=4)
    stand = Stand(RunConfig())
    runner.attach(cast(Session, stand))
    runner.poll(cast(Session, stand))
    app = LoadtuiApp(config=RunConfig(), plan=runner)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause(0.6)
        table = app.query_one("#plan-table", TextTable)
        assert [r[:2] for r in table.rows] == [["1 worker", "settling"], ["2 workers", ""], ["4 workers", ""]]
        assert "step 1/3 · settling" in text_of(app, "#plan-status")
        stand.feed(runner, 3)
        stand.feed(runner, 4, rps=321.0, p95=48.0)  # measured: step 2 starts
        await pilot.pause(0.6)
        assert table.rows[0] == ["1 worker", "done", "321.0", "10", "48", "0.0", "met"]
        assert table.rows[1][1] == "settling"
        await pilot.press("n")  # skip step 2 while it settles
        runner.poll(cast(Session, stand))
        await pilot.pause(0.6)
        assert table.rows[1][1] == "skipped" and table.rows[2][1] == "settling"
        await pilot.press("e")
        await pilot.pause(0.6)
        assert "stopped: ended with e" in text_of(app, "#plan-status")
        assert "verdict: 1 worker: 321 req/s" in text_of(app, "#plan-verdict")
        assert table.rows[2][1] == "stopped"


async def test_the_footer_shows_quit_and_help_at_80x24() -> None:
    app = create_app(config=RunConfig())
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        footer = app.export_screenshot().split("\n")
        last = " ".join(line for line in footer if "quit" in line or "help" in line)
        assert "quit" in last and "help" in last


async def test_a_refused_key_pressed_many_times_shows_one_toast() -> None:
    app = create_app(config=RunConfig(workers=1))
    async with app.run_test(size=(160, 48)) as pilot:
        for _ in range(15):
            await pilot.press("minus")  # one worker is the least: refused every time
        await pilot.pause()
        assert [str(n.message) for n in app._notifications] == ["at least one worker"]


async def test_in_flight_of_a_worker_that_cannot_report_is_unknown_not_zero() -> None:
    app = create_app(config=RunConfig(workers=2))
    async with app.run_test(size=(160, 48)) as pilot:
        blocked = tick(1.0, worker_cpu=[2.0, 2.0], lag=900.0, in_flight=0)
        app.post_message(TickArrived(blocked))
        await pilot.pause()
        rows = app.query_one("#worker-table", TextTable).rows
        assert [r[3] for r in rows] == ["?", "?"]
        assert "in flight: unknown, the worker cannot report" in text_of(app, "#app-total")
        app.post_message(TickArrived(tick(2.0, worker_cpu=[20.0, 20.0], lag=1.0, in_flight=3)))
        await pilot.pause()
        assert [r[3] for r in app.query_one("#worker-table", TextTable).rows] == ["3", "3"]
        assert "unknown" not in text_of(app, "#app-total")


PANELS = ("load", "diagnosis", "app", "database", "endpoints", "loadgen", "events")


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])
async def test_every_panel_can_be_brought_on_screen(size: tuple[int, int]) -> None:
    """At 80×24 the panels stand in one column taller than the screen: page down reaches each of them."""
    app = create_app(config=RunConfig(workers=2))
    async with app.run_test(size=size) as pilot:
        for i in range(3):
            app.post_message(TickArrived(tick(float(i), worker_cpu=[40.0, 41.0])))
        await pilot.pause()
        unreachable = []
        for pid in PANELS:
            for _ in range(15):
                geometry = app.screen.find_widget(app.query_one(f"#{pid}"))
                shown = geometry.region.intersection(geometry.clip).intersection(app.screen.region)
                if shown.height >= min(3, geometry.region.height):
                    break
                await pilot.press("pagedown")
            else:
                unreachable.append(pid)
            for _ in range(15):
                await pilot.press("pageup")
        assert unreachable == [], f"panels that no key brings on screen at {size}: {unreachable}"


async def test_f_opens_every_finding_in_full_however_long_its_advice() -> None:
    long_advice = "Raise the pool's max size. " * 20 + "THE END"
    findings = [
        Finding("too-few-workers", "warning", "Too few workers", "100% CPU", "Add workers."),
        Finding("pool-exhausted", "warning", "The pool is exhausted", "17 waiting", long_advice,
                consequence_of="too-few-workers"),
    ]  # fmt: skip
    app = create_app(config=RunConfig())
    async with app.run_test(size=(160, 48)) as pilot:
        app.post_message(TickArrived(tick(0.0, findings=findings)))
        await pilot.pause()
        await pilot.press("f")
        await pilot.pause()
        assert app.screen.__class__.__name__ == "FindingsScreen"
        text = str(app.screen.query_one("#findings-text", Static).render())
        assert "THE END" in text and "Too few workers" in text
        await pilot.press("escape")
        assert app.screen.__class__.__name__ != "FindingsScreen"


async def test_the_live_figures_are_shown_against_a_baseline(tmp_path: Path) -> None:
    from loadtui.results.recorder import SessionLog

    base_ticks = [tick(float(i), rps=1000.0, p50=10.0, users=50) for i in range(25)]
    header = {"config": RunConfig(users=50).to_dict(), "machine": {}, "versions": {}}
    baseline = SessionLog(tmp_path / "before.jsonl", header, base_ticks)
    app = create_app(config=RunConfig(users=50), baseline=baseline)
    async with app.run_test(size=(160, 48)) as pilot:
        for i in range(3):
            app.post_message(TickArrived(tick(float(i), rps=900.0, p50=11.0, users=50)))
            await pilot.pause()  # one second at a time (a newer tick supersedes one still queued)
        assert "vs before.jsonl: measuring (3 of 10 s)" in text_of(app, "#load-numbers")
        for i in range(3, 12):
            app.post_message(TickArrived(tick(float(i), rps=900.0, p50=11.0, users=50)))
            await pilot.pause()
        assert "vs before.jsonl: req/s -10% · p50 +10%" in text_of(app, "#load-numbers")
