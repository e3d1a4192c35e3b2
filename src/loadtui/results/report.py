"""`loadtui report`: a self-contained HTML report with plots, and CSV export, from one or more session logs.

Plots use plotly: interactive (zoom, hover for the exact second), and the first figure embeds plotly.js, so the
report opens offline and can be mailed to a colleague as one file. Given several logs, the report starts with their
comparison: every segment of every run in one table (best highlighted) and requests/s and p95 of all runs overlaid.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loadtui.diagnose import cause_text
from loadtui.errors import UsageError
from loadtui.model import Event, build
from loadtui.results import segments
from loadtui.results.compare import compare
from loadtui.results.export import log_segments, replacing, segment_columns, write_csv
from loadtui.results.plots import (
    comparison_figure,
    findings_figure,
    session_figure,
    sweep_figure,
)
from loadtui.results.recorder import SessionLog, read_log
from loadtui.results.verdict import TOO_SHORT, describe

"""Events drawn as vertical lines on the plots."""

STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1500px}
table{border-collapse:collapse;margin:.5em 0 1.5em}
td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px;text-align:right}
td:first-child,th:first-child,td.text{text-align:left}
tr.best{background:#d8f5d0}
.facts td{text-align:left}
.note{color:#666;font-size:13px}
li.missed{color:#b00}
tr.worse{background:#f8d7d7}
"""

# -- HTML --------------------------------------------------------------------------------------------------------


def _cell(value: Any) -> str:
    if value is None:
        return "<td>—</td>"
    if isinstance(value, list):
        return f"<td class='text'>{html.escape(', '.join(map(str, value)))}</td>"
    if isinstance(value, float):
        return f"<td>{value:,.1f}</td>"
    return f"<td>{html.escape(str(value))}</td>"


NO_WINNER = -1
"""`segment_table`'s highlight for a sweep that found no winner: nothing is highlighted."""


def segment_table(rows: Sequence[tuple[str | None, segments.Segment]], highlight: int | None = None) -> str:
    """The segments as an HTML table, numbered as shown, the best highlighted.

    `rows` pairs each segment with its run (or None). Segments too short to have a steady second are left out (and
    counted in a note). The best is picked among segments of the same scenario only — a ping beats a CRUD run
    without telling anything — or is segment `highlight`, a sweep's winner.
    """
    shown = [(run, seg) for run, seg in rows if seg.steady_seconds > 0]
    if highlight == NO_WINNER:
        winners: list[segments.Segment] = []
    elif highlight is not None:
        winners = [seg for _, seg in shown if seg.index == highlight][:1]
    else:
        groups: dict[str, list[segments.Segment]] = {}
        for _, seg in shown:
            groups.setdefault(_scenario_of(seg), []).append(seg)
        winners = [b for group in groups.values() if len(group) > 1 and (b := segments.best(group)) is not None]
    with_run = any(run is not None for run, _ in shown)
    columns = segment_columns([seg for _, seg in shown])
    head = ("<th>run</th>" if with_run else "") + "<th>#</th>" + "".join(f"<th>{h}</th>" for _, h in columns)
    body = []
    for number, (run, seg) in enumerate(shown, 1):
        d = seg.to_dict()
        cls = " class='best'" if any(seg is w for w in winners) else ""
        cells = (f"<td class='text'>{html.escape(run or '')}</td>" if with_run else "") + f"<td>{number}</td>"
        body.append(f"<tr{cls}>{cells}{''.join(_cell(d[key]) for key, _ in columns)}</tr>")
    note = ""
    if len(shown) < len(rows):
        note = (
            f"<p class='note'>{len(rows) - len(shown)} segment(s) shorter than the {segments.SETTLE_SECONDS} s of "
            "settling after a change, with nothing steady to measure, are left out.</p>"
        )
    return f"<table><tr>{head}</tr>{''.join(body)}</table>{note}"


def _scenario_of(seg: segments.Segment) -> str:
    """What a segment ran: its scenario, or the user's locustfile."""
    return str(seg.config.get("locustfile") or seg.config.get("scenario") or "")


@dataclass(frozen=True)
class SweepStep:
    """One step of a sweep as its log's summary line recorded it."""

    label: str
    segment: segments.Segment
    note: str


def sweep_of(log: SessionLog) -> tuple[list[SweepStep], dict[str, Any] | None]:
    """A sweep's steps and verdict from the log's summary line (nothing for a run without `--vary`).

    The summary comes from a file: every field is type-checked, and a malformed step is left out.
    """
    summary = log.summary or {}
    steps: list[SweepStep] = []
    for item in summary.get("plan") or []:
        if not isinstance(item, dict) or not isinstance(item.get("changes"), dict):
            continue
        if not isinstance(item.get("segment"), dict):
            continue
        try:
            seg = build(segments.Segment, item["segment"])
        except (TypeError, ValueError):
            continue
        steps.append(SweepStep(describe(item["changes"]), seg, str(item.get("note") or "")))
    verdict = summary.get("verdict")
    return steps, verdict if isinstance(verdict, dict) else None


def _sweep_html(log: SessionLog, embed: bool) -> str:
    """The sweep section: a row per step, the winner highlighted, the verdict in words, and a plot of the steps."""
    steps, verdict = sweep_of(log)
    if not steps:
        return ""
    won = verdict.get("segment") if verdict else None
    head = "".join(
        f"<th>{h}</th>"
        for h in ("step", "steady s", "req/s", "fail/s", "p50 ms", "p95 ms", "p99 ms", "CPU/worker %", "note")
    )
    body = []
    for step in steps:
        seg = step.segment
        cls = " class='best'" if won is not None and seg.index == won and not step.note else ""
        cells = [seg.steady_seconds, seg.rps, seg.fail_rps, seg.p50, seg.p95, seg.p99, seg.cpu_per_worker]
        body.append(
            f"<tr{cls}><td class='text'>{html.escape(step.label)}</td>{''.join(_cell(c) for c in cells)}"
            f"<td class='text'>{html.escape(step.note)}</td></tr>"
        )
    why = html.escape(str(verdict.get("why", ""))) if verdict else "the sweep did not finish"
    title = "Verdict" if won is not None else "No winner"
    return f"<h3>Sweep</h3><p><b>{title}:</b> {why}</p><table><tr>{head}</tr>{''.join(body)}</table>" + _figure_html(
        sweep_figure(steps), embed
    )


def _facts(log: SessionLog) -> str:
    m = log.header.get("machine") or {}
    v = log.header.get("versions") or {}
    duration = log.ticks[-1].t if log.ticks else 0.0
    facts = [
        ("started", str(log.header.get("started_at", "?"))),
        (
            "recorded",
            f"{len(log.ticks)} s of measurements over {duration:,.0f} s"
            + (" — cut off: the session was killed, everything before the cut is shown" if log.truncated else ""),
        ),
        (
            "machine",
            f"{m.get('cpu_count', '?')} cores · {int(m.get('memory_bytes', 0)) / 2**30:.0f} GiB · "
            f"{m.get('platform', '?')}",
        ),
        ("versions", " · ".join(f"{k} {val}" for k, val in v.items())),
    ]
    config = log.header.get("config") or {}
    rate = config.get("rate")
    facts.append(
        (
            "load",
            f"by arrival rate (open model): {rate} req/s, {config.get('arrivals', 'uniform')} arrivals; latency counts "
            "from each arrival's intended start"
            if rate is not None
            else f"{config.get('users', '?')} users (closed model: each waits for its answer before it sends again)",
        )
    )
    facts.append(
        (
            "configuration at start",
            " · ".join(_setting(k, val) for k, val in config.items() if val not in (None, {}, "")),
        )
    )
    rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(val)}</td></tr>" for k, val in facts)
    return f"<table class='facts'>{rows}</table>"


def _setting(name: str, value: Any) -> str:
    """One setting in words: `access log off`, `workers 2`."""
    if isinstance(value, bool):
        value = "on" if value else "off"
    return f"{name.replace('_', ' ')} {value}"


def _figure_html(fig: Any, embed_js: bool) -> str:
    return str(fig.to_html(full_html=False, include_plotlyjs=embed_js, config={"displaylogo": False}))


def render(logs: Sequence[SessionLog]) -> str:
    """The report's HTML: one document, plotly.js embedded once."""
    generated = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>loadtui report</title><style>{STYLE}</style>"
        f"</head><body><h1>loadtui report</h1><p class='note'>{len(logs)} session log(s) · generated {generated}"
        " · steady-state figures leave out the first "
        f"{segments.SETTLE_SECONDS} s after each change</p>"
    ]
    embed = True
    if len(logs) > 1:
        parts.append("<h2>Comparison</h2>")
        parts.append(segment_table([(log.path.name, s) for log in logs for s in log_segments(log)]))
        parts.append(_figure_html(comparison_figure(logs), embed))
        embed = False
    if len(logs) == 2:
        parts.append(_change_html(logs[0], logs[1]))
        embed = _change_figure(logs[0], logs[1], parts, embed)
    for log in logs:
        parts.append(f"<h2>{html.escape(log.path.name)}</h2>")
        parts.append(_facts(log))
        sweep = _sweep_html(log, embed)
        if sweep:
            parts.append(sweep)
            embed = False
        _, verdict = sweep_of(log)
        won = verdict.get("segment") if verdict else None
        highlight = won if isinstance(won, int) else NO_WINNER if verdict is not None else None
        parts.append("<h3>Segments</h3>" + segment_table([(None, s) for s in log_segments(log)], highlight))
        parts.append(_slo_html(log))
        parts.append("<h3>Findings</h3>")
        findings = findings_figure(log)
        if findings is None:
            parts.append("<p>none — no bottleneck detected by the rules</p>")
        else:
            parts.append(_figure_html(findings, embed))
            embed = False
            started = [e for e in log.events if e.kind == "finding-started"]
            parts.append(
                "<ul>"
                + "".join(
                    f"<li>{e.t:.0f} s — <b>{html.escape(e.message)}</b>{_consequence(e)}: "
                    f"{html.escape(str(e.data.get('evidence', '')))}</li>"
                    for e in started
                )
                + "</ul>"
            )
        parts.append("<h3>Over time</h3>")
        parts.append(_figure_html(session_figure(log), embed))
        embed = False
    parts.append("</body></html>")
    return "\n".join(parts)


def _change_html(base: SessionLog, new: SessionLog) -> str:
    """Two logs: the second judged against the first (`loadtui compare`), each figure's change and interval."""
    result = compare(base, new)
    rows = []
    for seg in result.segments:
        if seg.untrusted:
            rows.append(f"<tr><td class='text'>{html.escape(seg.label)}</td><td colspan='6' class='text'>no verdict: "
                        f"{html.escape(seg.untrusted)}</td></tr>")  # fmt: skip
            continue
        for f in seg.figures:
            cells = "".join(f"<td>{html.escape(c)}</td>" for c in f.row()[1:5])
            cls = " class='worse'" if f.regression else ""
            rows.append(
                f"<tr{cls}><td class='text'>{html.escape(seg.label)}</td><td class='text'>{html.escape(f.figure)}</td>"
                f"{cells}<td class='text'>{html.escape(f.row()[5])}</td></tr>"
            )
    head = "".join(
        f"<th>{h}</th>" for h in ("configuration", "figure", "base", "new", "change", "95% interval", "verdict")
    )
    return (
        f"<h3>{html.escape(new.path.name)} against {html.escape(base.path.name)}</h3>"
        f"<table><tr>{head}</tr>{''.join(rows)}</table><p><b>Verdict:</b> {html.escape(result.verdict)}</p>"
    )


def _change_figure(base: SessionLog, new: SessionLog, parts: list[str], embed: bool) -> bool:
    """The changes with their intervals as a plot (one marker per figure and configuration); returns `embed`."""
    import plotly.graph_objects as go

    result = compare(base, new)
    names, points, lows, highs = [], [], [], []
    for seg in result.segments:
        for f in seg.figures:
            c = f.change
            if c is None or not c.relative or seg.untrusted:
                continue
            names.append(f"{f.figure} · {seg.label}")
            points.append(c.point * 100)
            lows.append((c.point - c.low) * 100)
            highs.append((c.high - c.point) * 100)
    if not names:
        return embed
    fig = go.Figure(
        go.Scatter(
            x=points,
            y=names,
            mode="markers",
            name="change, %",
            error_x={"type": "data", "symmetric": False, "array": highs, "arrayminus": lows},
        )
    )
    fig.add_vline(x=0, line_dash="dot")
    fig.update_layout(
        height=80 + 28 * len(names), xaxis_title="change against the base, % (95% interval)", margin={"l": 260}
    )
    parts.append(_figure_html(fig, embed))
    return False


def _consequence(event: Event) -> str:
    """ " (a consequence of too-few-workers)" for a finding that started as the consequence of another."""
    cause = event.data.get("consequence_of")
    return f" <i>({html.escape(cause_text(str(event.data.get('id')), str(cause)))})</i>" if cause else ""


def _slo_html(log: SessionLog) -> str:
    """A plain run's `--slo` results from its summary, each met or missed (a sweep shows its own)."""
    checks = (log.summary or {}).get("slo_checks")
    if not isinstance(checks, list) or not checks:
        return ""
    rows = []
    for check in checks:
        if not isinstance(check, dict):
            continue
        met = bool(check.get("met"))
        value = check.get("value")
        where = (
            f"segment {check.get('segment')}"
            if isinstance(check.get("segment"), int) and check["segment"] >= 0
            else TOO_SHORT
        )
        shown = "—" if not isinstance(value, (int, float)) or isinstance(value, bool) else f"{value:,.2f}"
        rows.append(
            f"<li class='{'met' if met else 'missed'}'><b>{html.escape(str(check.get('slo', '')))}</b>: "
            f"{'met' if met else 'MISSED'} ({html.escape(shown)}, {html.escape(where)})</li>"
        )
    head = "all met" if all(isinstance(c, dict) and c.get("met") for c in checks) else "MISSED (exit status 3)"
    return f"<h3>SLOs: {head}</h3><ul>{''.join(rows)}</ul>"


def write_report(files: list[Path], output: Path, csv_dir: Path | None = None) -> int:
    """`loadtui report`: returns the exit status."""
    logs = [read_log(f, slim=True) for f in files]
    for log in logs:
        if not log.ticks:
            raise UsageError(f"{log.path} holds no seconds of measurements; record a longer session")
    if any(output.resolve() == f.resolve() for f in files):
        raise UsageError(f"-o {output} is one of the session logs; write the report to another file")
    if output.is_symlink():
        raise UsageError(f"-o {output} is a symbolic link; write the report to a plain file")
    try:
        # Written beside the target and renamed: a reader never sees half a report, a failure leaves no debris.
        with replacing(output) as f:
            f.write(render(logs))
    except OSError as exc:
        raise UsageError(f"cannot write {output} ({exc.strerror}); pass a writable -o") from None
    written = [output]
    if csv_dir is not None:
        try:
            for log in logs:
                written += write_csv(log, csv_dir)
        except OSError as exc:
            raise UsageError(f"cannot write CSV files in {csv_dir} ({exc.strerror}); pass a writable --csv") from None
    print("loadtui: wrote " + ", ".join(str(p) for p in written))
    return 0
