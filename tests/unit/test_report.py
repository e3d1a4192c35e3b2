"""The HTML report and the CSV export, from synthetic session logs (the browser test is in tests/integration)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from loadtui.config import RunConfig
from loadtui.results.export import TICK_COLUMNS, write_csv
from loadtui.results.plots import finding_intervals
from loadtui.results.recorder import read_log
from loadtui.results.report import render
from tests.helpers import write_session_log


def trace(name: str) -> str:
    """How a trace's name appears in the page (plotly escapes / in its JSON)."""
    return '"name":' + json.dumps(name).replace("/", "\\u002f")


def test_report_holds_every_series_segments_findings_and_marks(tmp_path: Path) -> None:
    log = read_log(write_session_log(tmp_path / "run.jsonl"))
    page = render([log])
    for series in ("requests/s", "failures/s", "p50", "p95", "p99", "worker 1000", "worker 1001", "load generator",
                   "db active", "db idle", "pool waiting", "too-few-workers"):  # fmt: skip
        assert trace(series) in page, series
    assert "before adding a worker" in page  # the mark, on the plots and in the segment table
    assert json.dumps("workers → 3")[1:-1] in page  # the configuration change drawn on the plots
    assert page.count("<tr class='best'>") == 1
    assert "A worker is CPU-bound" in page and "worker 1000 at 99%" in page
    assert page.count("plotly.js v") == 1  # embedded once: the file works offline, and stays one file
    assert "<script src=" not in page  # nothing loaded from the network


def test_two_runs_are_compared_side_by_side(tmp_path: Path) -> None:
    one = read_log(write_session_log(tmp_path / "one-worker.jsonl", segments=1, workers=1))
    four = read_log(write_session_log(tmp_path / "four-workers.jsonl", segments=1, workers=4))
    page = render([one, four])
    comparison = page[page.index("<h2>Comparison</h2>") : page.index("<h3>four-workers.jsonl against")]
    assert "one-worker.jsonl" in comparison and "four-workers.jsonl" in comparison
    assert comparison.count("<tr") == 3 and comparison.count("class='best'") == 1
    assert trace("one-worker.jsonl") in comparison and trace("four-workers.jsonl") in comparison
    # The second judged against the first: nothing in common here, so no verdict, and why.
    judged = page[page.index("<h3>four-workers.jsonl against") : page.index("<h2>one-worker.jsonl</h2>")]
    assert "no verdict" in judged and "no configuration was measured by both runs" in judged


def test_csv_columns_match_locust_stats_history(tmp_path: Path) -> None:
    log = read_log(write_session_log(tmp_path / "run.jsonl", segments=2, seconds=10))
    ticks_csv, segments_csv = write_csv(log, tmp_path / "csv")
    with open(ticks_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == list(TICK_COLUMNS)
    aggregated = [r for r in rows if r["Name"] == "Aggregated"]
    assert len(aggregated) == 20 and len(rows) == 60  # two endpoints and the aggregate per second
    assert aggregated[0]["Timestamp"] == str(1795435200 + 1) and aggregated[-1]["Segment"] == "1"
    assert {r["Name"] for r in rows} == {"Aggregated", "/tasks/"} and {r["Type"] for r in rows} == {"", "GET", "POST"}
    assert float(aggregated[5]["Requests/s"]) == 1000.0 and aggregated[5]["95%"] == "30.0"
    with open(segments_csv, newline="") as f:
        segs = list(csv.DictReader(f))
    assert [s["index"] for s in segs] == ["0", "1"] and segs[0]["steady_seconds"] == "7"
    assert segs[0]["marks"] == "7 s: before adding a worker" and segs[0]["findings"] == "too-few-workers"


def test_finding_intervals_come_from_the_ticks(tmp_path: Path) -> None:
    log = read_log(write_session_log(tmp_path / "run.jsonl"))
    assert finding_intervals(log) == {"too-few-workers": [(5.0, 11.0)]}


def loadtui(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "loadtui", *args], capture_output=True, text=True, timeout=120)


@pytest.mark.slow  # starts `python -m loadtui report`
def test_a_log_cut_off_mid_line_is_reported_up_to_the_cut(tmp_path: Path) -> None:
    path = write_session_log(tmp_path / "killed.jsonl")
    text = path.read_text()
    cut = text[: text.index('{"type":"tick","t":9.0')] + '{"type":"tick","t":9.0,"rps":10'
    path.write_text(cut)
    result = loadtui("report", str(path), "-o", str(tmp_path / "r.html"))
    assert result.returncode == 0, result.stderr
    page = (tmp_path / "r.html").read_text()
    assert "cut off" in page and "8 s of measurements" in page


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("hello\n", "not a loadtui session log"),
        (json.dumps({"type": "session", "schema_version": 99}) + "\n", "schema_version 99"),
    ],
)
@pytest.mark.slow  # starts `python -m loadtui report`
def test_foreign_or_newer_files_are_one_line_and_exit_2(tmp_path: Path, content: str, words: str) -> None:
    path = tmp_path / "x.jsonl"
    path.write_text(content)
    result = loadtui("report", str(path), "-o", str(tmp_path / "r.html"))
    assert result.returncode == 2
    assert words in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "r.html").exists()


def _traces(fig: object) -> dict[str, tuple[list[object], list[object]]]:
    return {tr.name: (list(tr.x), list(tr.y)) for tr in fig.data}  # type: ignore[attr-defined]


def test_each_plot_trace_carries_its_own_series(tmp_path: Path) -> None:
    from loadtui.results.plots import comparison_figure, session_figure

    log = read_log(write_session_log(tmp_path / "run.jsonl", segments=2, seconds=6))
    traces = _traces(session_figure(log))
    ticks = log.ticks
    t = [k.t for k in ticks]
    expected = {
        "requests/s": [k.rps for k in ticks],
        "failures/s": [k.fail_rps for k in ticks],
        "p50": [k.latency.p50 for k in ticks],
        "p95": [k.latency.p95 for k in ticks],
        "p99": [k.latency.p99 for k in ticks],
        "load generator": [k.loadgen.cpu_percent if k.loadgen else None for k in ticks],
        "db active": [k.db.by_state["active"] if k.db else None for k in ticks],
        "pool waiting": [sum(p.waiting for p in k.pools) for k in ticks],
    }
    for name, ys in expected.items():
        assert traces[name] == (t, ys), name
    # p95 differs from p50 in this log, so a swapped series shows.
    assert traces["p95"][1] != traces["p50"][1]
    # Worker 1002 exists only in the second segment: None before it appears, its CPU after.
    _xs, worker_cpu = traces["worker 1002"]
    assert worker_cpu[:6] == [None] * 6 and worker_cpu[6:] == [59.0] * 6
    comparison = _traces(comparison_figure([log]))
    assert comparison["run.jsonl"] == (t, [k.latency.p95 for k in ticks])  # the p95 trace (the last of that name)


def test_text_from_a_log_is_escaped_in_the_page(tmp_path: Path) -> None:
    import dataclasses

    from loadtui.config import RunConfig
    from loadtui.model import Event, Finding
    from loadtui.results.recorder import Recorder
    from tests.helpers import tick

    evil = "<script>alert(1)</script>"
    rec = Recorder(tmp_path / "evil.jsonl")
    import datetime as dt

    rec.header(RunConfig(scenario="ping"), dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    finding = Finding("too-few-workers", "warning", evil, f"evidence {evil}", "advice")
    for i in range(8):
        rec.tick(dataclasses.replace(tick(float(i + 1)), findings=[finding]))
    rec.event(Event(2.0, "finding-started", evil, {"id": "too-few-workers", "evidence": evil}))
    rec.event(Event(3.0, "mark", evil, {"note": evil}))
    rec.close()
    page = render([read_log(tmp_path / "evil.jsonl")])
    assert evil not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_csv_cells_cannot_become_formulas(tmp_path: Path) -> None:
    import dataclasses

    from loadtui.model import EndpointStats

    log = read_log(write_session_log(tmp_path / "run.jsonl", segments=1, seconds=3))
    bad = EndpointStats("GET", '=HYPERLINK("http://x")', 1.0, 0.0)
    log.ticks[0] = dataclasses.replace(log.ticks[0], endpoints=[bad])
    ticks_csv, _ = write_csv(log, tmp_path / "csv")
    with open(ticks_csv, newline="") as f:
        names = [row["Name"] for row in csv.DictReader(f)]
    assert '\'=HYPERLINK("http://x")' in names
    assert not any(n.startswith(("=", "+", "-", "@")) for n in names)


def test_write_report_refuses_an_empty_log_and_an_unwritable_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from loadtui.errors import UsageError
    from loadtui.results.report import write_report

    good = write_session_log(tmp_path / "good.jsonl", segments=1, seconds=3)
    assert write_report([good], tmp_path / "r.html") == 0
    assert f"loadtui: wrote {tmp_path / 'r.html'}" in capsys.readouterr().out
    with pytest.raises(UsageError, match="pass a writable -o"):
        write_report([good], tmp_path / "missing-dir" / "r.html")
    empty = tmp_path / "empty.jsonl"
    empty.write_text(good.read_text().splitlines()[0] + "\n")
    with pytest.raises(UsageError, match="holds no seconds of measurements"):
        write_report([empty], tmp_path / "r2.html")


def _by_name(fig: object) -> dict[str, object]:
    return {tr.name: tr for tr in fig.data}  # type: ignore[attr-defined]


def test_the_session_plot_has_its_panels_each_series_on_its_row_and_one_shared_time_axis(tmp_path: Path) -> None:
    from loadtui.results.plots import SESSION_PANELS, session_figure

    log = read_log(write_session_log(tmp_path / "run.jsonl", segments=2, seconds=8))
    fig = session_figure(log)
    titles = [a.text for a in fig.layout.annotations][: len(SESSION_PANELS)]
    assert titles == list(SESSION_PANELS)
    rows = {"requests/s": "y", "failures/s": "y", "p50": "y2", "p95": "y2", "p99": "y2", "worker 1000": "y3",
            "load generator": "y3", "db active": "y4", "db idle": "y4", "pool waiting": "y4"}  # fmt: skip
    traces = _by_name(fig)
    for name, axis in rows.items():
        assert traces[name].yaxis == axis, name  # type: ignore[attr-defined]
    assert [fig.layout[f"xaxis{i}"].matches for i in ("", 2, 3)] == ["x4", "x4", "x4"]  # zoom one, zoom all
    assert traces["db active"].stackgroup == "db"  # type: ignore[attr-defined]
    assert fig.layout.hovermode == "x unified"
    assert fig.layout.xaxis4.title.text == "seconds since start"
    # The configuration change and the mark are drawn: a line and a label each, marks in their own colour.
    labels = [a.text for a in fig.layout.annotations][len(SESSION_PANELS) :]
    assert labels == ["before adding a worker", "workers → 3"]
    lines = [s for s in fig.layout.shapes if s.type == "line"]
    assert sorted({(s.x0, s.line.color) for s in lines}) == [(7.2, "darkorange"), (8.5, "gray")]
    assert len(lines) == 2 * len(SESSION_PANELS)  # across every panel


def test_event_colours_and_which_events_are_drawn(tmp_path: Path) -> None:
    from loadtui.results.plots import TIMELINE_EVENTS, event_color

    assert event_color("mark") == "darkorange"
    assert event_color("restart-failed") == "crimson" and event_color("app-exited") == "crimson"
    assert event_color("config") == "gray"
    assert "finding-started" not in TIMELINE_EVENTS and {"config", "mark", "restart", "app-exited"} <= set(
        TIMELINE_EVENTS
    )


def test_the_findings_plot_draws_each_span(tmp_path: Path) -> None:
    from loadtui.results.plots import findings_figure

    log = read_log(write_session_log(tmp_path / "run.jsonl"))
    fig = findings_figure(log)
    assert fig is not None
    [bar] = fig.data
    assert bar.name == "too-few-workers" and list(bar.x) == [5.0, 11.0, None]
    assert list(bar.y) == ["too-few-workers", "too-few-workers", None]
    assert list(fig.layout.xaxis.range) == [0, 20.0]
    quiet = read_log(write_session_log(tmp_path / "quiet.jsonl", segments=1))
    quiet.ticks[:] = [t for t in quiet.ticks if not t.findings]
    assert findings_figure(quiet) is None


def test_the_comparison_plot_has_requests_and_p95_of_each_run(tmp_path: Path) -> None:
    from loadtui.results.plots import comparison_figure

    one = read_log(write_session_log(tmp_path / "one.jsonl", segments=1, seconds=4, workers=1))
    two = read_log(write_session_log(tmp_path / "two.jsonl", segments=1, seconds=4, workers=2))
    fig = comparison_figure([one, two])
    data = [(tr.name, tr.yaxis, list(tr.y)) for tr in fig.data]
    assert data == [
        ("one.jsonl", "y", [k.rps for k in one.ticks]),
        ("one.jsonl", "y2", [k.latency.p95 for k in one.ticks]),
        ("two.jsonl", "y", [k.rps for k in two.ticks]),
        ("two.jsonl", "y2", [k.latency.p95 for k in two.ticks]),
    ]
    assert [a.text for a in fig.layout.annotations] == ["requests/s", "p95 latency (ms)"]


def test_facts_table(tmp_path: Path) -> None:
    from loadtui.results.report import _facts

    log = read_log(write_session_log(tmp_path / "run.jsonl", segments=1, seconds=4))
    log.header["machine"] = {"cpu_count": 2, "memory_bytes": 24 * 2**30, "platform": "Linux-x"}
    log.header["versions"] = {"loadtui": "0.1.0", "python": "3.11.7"}
    html = _facts(log)
    assert "<tr><th>started</th><td>2026-11-23T12:00:00+00:00</td></tr>" in html
    assert "<tr><th>recorded</th><td>4 s of measurements over 4 s</td></tr>" in html
    assert "<tr><th>machine</th><td>2 cores · 24 GiB · Linux-x</td></tr>" in html
    assert "<tr><th>versions</th><td>loadtui 0.1.0 · python 3.11.7</td></tr>" in html
    assert "<th>configuration at start</th><td>workers 2 · pool min 2 · pool max 10 · db mode pool" in html
    assert "dsn" not in html and "extra" not in html  # empty values are left out
    log.truncated = True
    assert "cut off: the session was killed" in _facts(log)


def test_segment_table_html(tmp_path: Path) -> None:
    from loadtui.results.export import log_segments
    from loadtui.results.report import segment_table

    log = read_log(write_session_log(tmp_path / "run.jsonl", segments=2, seconds=6))
    segs = log_segments(log)
    page = segment_table([(None, s) for s in segs])
    assert page.startswith("<table><tr><th>#</th><th>configuration</th><th>steady s</th><th>req/s</th>")
    assert "<th>run</th>" not in page
    assert "<tr><td>1</td><td>crud · 50 users · 2w · pool 2-10</td><td>3</td><td>1,000.0</td>" in page
    assert "<tr class='best'><td>2</td>" in page  # numbered as shown, from 1
    assert "<td class='text'>too-few-workers</td>" in page and "<td>—</td>" not in page.split("</tr>")[1][:40]
    runs = segment_table([("a.jsonl", segs[0])])
    assert "<th>run</th>" in runs and "<td class='text'>a.jsonl</td><td>1</td>" in runs
    assert "class='best'" not in runs  # one row: nothing to compare


def test_render_puts_the_comparison_first_then_each_run(tmp_path: Path) -> None:
    a = read_log(write_session_log(tmp_path / "a.jsonl", segments=1, seconds=10))
    b = read_log(write_session_log(tmp_path / "b.jsonl", segments=1, seconds=10))
    page = render([a, b])
    assert page.startswith("<!doctype html><html><head><meta charset='utf-8'><title>loadtui report</title>")
    assert "2 session log(s)" in page and "leave out the first 3 s after each change" in page
    order = [page.index(h) for h in ("<h2>Comparison</h2>", "<h2>a.jsonl</h2>", "<h2>b.jsonl</h2>")]
    assert order == sorted(order)
    assert page.count("<h3>Segments</h3>") == 2 and page.count("<h3>Over time</h3>") == 2
    assert "<li>5 s — <b>A worker is CPU-bound</b>: worker 1000 at 99%</li>" in page
    assert page.endswith("</body></html>")
    single = render([a])
    assert "<h2>Comparison</h2>" not in single and single.count("plotly.js v") == 1


def test_segment_configs_come_from_the_config_events(tmp_path: Path) -> None:

    log = read_log(write_session_log(tmp_path / "run.jsonl", segments=3, seconds=4))
    configs = log.segment_configs()
    assert {i: c.workers for i, c in configs.items()} == {0: 2, 1: 3, 2: 4}


def test_csv_rows_hold_the_exact_figures(tmp_path: Path) -> None:
    from loadtui.results.export import tick_rows

    log = read_log(write_session_log(tmp_path / "run.jsonl", segments=1, seconds=2))
    rows = list(tick_rows(log))
    first_endpoint, _second, aggregated = rows[:3]
    k = log.ticks[0]
    assert first_endpoint == [1795435201, 1.0, 50, "GET", "/tasks/", 400.0, 0.0, 9.0, 28.0, 40.0, None, None, None,
                              None, None, None, 0]  # fmt: skip
    assert aggregated == [1795435201, 1.0, 50, "", "Aggregated", k.rps, k.fail_rps, 10.0, 30.0, 30.0, 30.0,
                          round(k.app_cpu_percent, 1), 2, 30.0, 10, 0, 0]  # fmt: skip
    log.header["started_at"] = "not a time"
    assert next(iter(tick_rows(log)))[0] == 1


def test_the_report_never_overwrites_a_log_nor_follows_a_link(tmp_path: Path) -> None:
    import os

    from loadtui.errors import UsageError
    from loadtui.results.report import write_report

    log = write_session_log(tmp_path / "run.jsonl", segments=1, seconds=3)
    before = log.read_bytes()
    with pytest.raises(UsageError, match="is one of the session logs"):
        write_report([log], tmp_path / "." / "run.jsonl")
    assert log.read_bytes() == before
    os.symlink(tmp_path / "victim", tmp_path / "r.html")
    with pytest.raises(UsageError, match="symbolic link"):
        write_report([log], tmp_path / "r.html")
    assert not (tmp_path / "victim").exists()
    assert write_report([log], tmp_path / "ok.html") == 0
    assert not list(tmp_path.glob(".*.tmp"))  # written beside and renamed: no debris


def test_names_from_a_log_are_escaped_in_plot_labels(tmp_path: Path) -> None:
    import dataclasses

    from loadtui.model import DbStats
    from loadtui.results.plots import session_figure

    log = read_log(write_session_log(tmp_path / "run.jsonl", segments=1, seconds=4))
    evil = "<a href='http://x'>x</a>"
    log.ticks[0] = dataclasses.replace(
        log.ticks[0], db=DbStats(connections=1, max_connections=5, by_state={evil: 1}, by_application={})
    )
    names = [tr.name for tr in session_figure(log).data]
    assert f"db {evil}" not in names and "db &lt;a href=&#x27;http://x&#x27;&gt;x&lt;/a&gt;" in names


def test_a_sweep_gets_its_table_verdict_and_plot_and_the_winner_is_highlighted(tmp_path: Path) -> None:
    import dataclasses

    from loadtui.results.recorder import SessionLog
    from loadtui.results.segments import summarize
    from tests.helpers import tick

    log = read_log(write_session_log(tmp_path / "run.jsonl", segments=2, seconds=10))
    one = summarize(0, [tick(float(i), rps=100.0) for i in range(5)], None, settle=0)
    two = summarize(1, [tick(float(i), rps=190.0) for i in range(5)], None, settle=0)
    plan = [
        {"changes": {"workers": 1}, "segment": dataclasses.asdict(one), "note": ""},
        {"changes": {"workers": 2}, "segment": dataclasses.asdict(two), "note": "<script>alert(1)</script>"},
        {"changes": {"workers": 3}, "segment": "not a segment"},  # a damaged step is left out
        "junk",
    ]
    verdict = {"segment": 1, "config": {"workers": 2}, "why": "2 workers won <b>x</b>", "slos": []}
    swept = SessionLog(log.path, log.header, log.ticks, log.events, {**(log.summary or {}), "plan": plan,
                       "verdict": verdict}, log.truncated)  # fmt: skip
    page = render([swept])
    sweep = page[page.index("<h3>Sweep</h3>") : page.index("<h3>Segments</h3>")]
    assert "<b>Verdict:</b> 2 workers won &lt;b&gt;x&lt;/b&gt;" in sweep
    assert sweep.count("<tr") == 3 and "3 workers" not in sweep
    assert "&lt;script&gt;" in sweep and "<script>alert" not in page
    assert trace("requests/s") in sweep and "p95 latency per step" in sweep
    segments_table = page[page.index("<h3>Segments</h3>") :]
    assert segments_table.count("class='best'") == 1


def test_event_labels_close_in_time_step_down_instead_of_printing_over_each_other() -> None:
    from loadtui.results.plots import label_levels

    assert label_levels([10.0, 100.0, 200.0], 400.0, 4) == [0, 0, 0]
    assert label_levels([10.0, 12.0, 13.0, 14.0, 15.0, 300.0], 400.0, 4) == [0, 1, 2, 3, 0, 0]


def test_segment_tables_number_what_they_show_and_compare_like_with_like() -> None:
    from loadtui.results.report import segment_table
    from loadtui.results.segments import summarize
    from tests.helpers import tick

    def seg(index: int, scenario: str, rps: float, seconds: int = 8) -> Any:
        return summarize(index, [tick(float(i), rps=rps) for i in range(seconds)], RunConfig(scenario=scenario))

    rows = [(None, seg(0, "crud", 100.0)), (None, seg(3, "crud", 200.0, seconds=2)), (None, seg(10, "crud", 150.0)),
            (None, seg(13, "ping", 5000.0))]  # fmt: skip
    table = segment_table(rows)
    assert "<td>1</td>" in table and "<td>3</td>" in table and "<td>10</td>" not in table
    assert "1 segment(s) shorter than the 3 s of settling" in table
    best = [line for line in table.split("<tr") if "class='best'" in line]
    assert len(best) == 1 and "150.0" in best[0]  # the best crud segment; ping is alone and is not compared
    assert "class='best'" not in segment_table([(None, seg(0, "crud", 100.0)), (None, seg(1, "ping", 900.0))])


def test_each_run_has_one_colour_in_every_comparison_plot(tmp_path: Path) -> None:
    one = read_log(write_session_log(tmp_path / "one.jsonl", segments=1, workers=1))
    two = read_log(write_session_log(tmp_path / "two.jsonl", segments=1, workers=2))
    page = render([one, two])
    comparison = page[page.index("<h2>Comparison</h2>") : page.index("<h2>one.jsonl</h2>")]
    assert comparison.count('"color":"#1f77b4"') == 2 and comparison.count('"color":"#ff7f0e"') == 2
    assert "access log off" in page and "access log False" not in page


def test_a_three_minute_report_is_plotly_js_plus_a_little_data(tmp_path: Path) -> None:
    import re

    log = read_log(write_session_log(tmp_path / "run.jsonl", segments=3, seconds=60))
    page = render([log])
    scripts = sorted(len(s) for s in re.findall(r"<script[^>]*>(.*?)</script>", page, re.S))
    assert scripts[-1] > 1_000_000  # plotly.js, embedded once so the file works offline
    assert len(page) - scripts[-1] < 250_000, "the data of a 3-minute session is written more than once"


def test_no_winner_highlights_nothing_and_slo_results_and_consequences_are_shown(tmp_path: Path) -> None:
    from loadtui.model import Event
    from loadtui.results.recorder import SessionLog

    log = read_log(write_session_log(tmp_path / "run.jsonl", segments=2, seconds=10))
    verdict: dict[str, Any] = {
        "segment": None,
        "config": {},
        "why": "no configuration met the SLOs",
        "slos": ["p95 < 1 ms"],
    }
    no_winner = SessionLog(log.path, log.header, log.ticks, log.events, {**(log.summary or {}), "plan": [],
                           "verdict": verdict}, log.truncated)  # fmt: skip
    page = render([no_winner])
    assert page[page.index("<h3>Segments</h3>") :].count("class='best'") == 0
    # A plain run's SLOs, met and missed, each with its figure; the finding that followed from another says so.
    checks = [{"slo": "p95 < 100 ms", "segment": 0, "value": 30.0, "met": True},
              {"slo": "rps > 5000", "segment": 1, "value": 2000.0, "met": False}]  # fmt: skip
    started = Event(5.0, "finding-started", "The pool is exhausted", {"id": "pool-exhausted", "evidence": "17 wait",
                    "consequence_of": "too-few-workers"})  # fmt: skip
    plain = SessionLog(log.path, log.header, log.ticks, [*log.events, started],
                       {**(log.summary or {}), "slo_checks": checks}, log.truncated)  # fmt: skip
    page = render([plain])
    assert "<h3>SLOs: MISSED (exit status 3)</h3>" in page
    assert "<b>p95 &lt; 100 ms</b>: met (30.00, segment 0)" in page and "<b>rps &gt; 5000</b>: MISSED" in page
    assert (
        "<b>The pool is exhausted</b> <i>(a consequence of the workers&#x27; full cores (too-few-workers))</i>" in page
    )


def test_planted_links_in_a_shared_folder_are_never_written_through(tmp_path: Path) -> None:
    import os

    from loadtui.errors import UsageError
    from loadtui.results.report import write_report

    log = write_session_log(tmp_path / "run.jsonl", segments=1, seconds=3)
    victim = tmp_path / "victim"
    victim.write_text("keep")
    os.symlink(victim, tmp_path / ".r.html.tmp")  # the temp name a report once used
    assert write_report([log], tmp_path / "r.html") == 0
    assert victim.read_text() == "keep" and "<html" in (tmp_path / "r.html").read_text()
    out = tmp_path / "csv"
    out.mkdir()
    os.symlink(victim, out / "run_ticks.csv")
    with pytest.raises(UsageError, match="symbolic link"):
        write_report([log], tmp_path / "r2.html", csv_dir=out)
    assert victim.read_text() == "keep"


def test_two_runs_of_one_configuration_get_the_judged_comparison_with_its_plot(tmp_path: Path) -> None:
    import dataclasses

    base = read_log(write_session_log(tmp_path / "base.jsonl", segments=1, seconds=25))
    slower = dataclasses.replace(
        read_log(write_session_log(tmp_path / "new.jsonl", segments=1, seconds=25)),
        ticks=[dataclasses.replace(t, rps=t.rps * 0.7) for t in base.ticks],
    )
    page = render([base, slower])
    judged = page[page.index("<h3>new.jsonl against base.jsonl</h3>") : page.index("<h2>base.jsonl</h2>")]
    assert "class='worse'" in judged and "REGRESSION beyond 10%" in judged and "-30.0%" in judged
    assert trace("change, %") in judged
