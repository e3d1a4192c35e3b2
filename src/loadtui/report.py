"""`loadtui report`: a self-contained HTML report with plots, and CSV export, from one or more session logs.

Plots use plotly: interactive (zoom, hover for the exact second), and `include_plotlyjs=True` embeds plotly.js in
the file, so the report opens offline and can be mailed to a colleague as one file.
"""

from __future__ import annotations

import csv
import html
from pathlib import Path
from typing import Any

from loadtui import segments
from loadtui.config import RunConfig
from loadtui.errors import UsageError
from loadtui.recorder import SessionLog, read_log


def segment_configs(log: SessionLog) -> dict[int, RunConfig]:
    """The configuration of each segment, from the header and the `config` events."""
    configs = {0: log.config}
    for ev in log.events:
        if ev.kind == "config" and "segment" in ev.data and "config" in ev.data:
            configs[int(ev.data["segment"])] = RunConfig.from_dict(ev.data["config"])
    return configs


def log_segments(log: SessionLog) -> list[segments.Segment]:
    """Steady-state figures per configuration segment."""
    return segments.split(log.ticks, segment_configs(log))


def _figures(log: SessionLog) -> list[Any]:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    t = [tick.t for tick in log.ticks]
    fig = make_subplots(
        rows=4,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.05,
        subplot_titles=("requests/s and failures/s", "latency (ms)", "CPU (% of one core)", "PostgreSQL connections"),
    )
    fig.add_trace(go.Scatter(x=t, y=[k.rps for k in log.ticks], name="requests/s"), 1, 1)
    fig.add_trace(go.Scatter(x=t, y=[k.fail_rps for k in log.ticks], name="failures/s"), 1, 1)
    for name in ("p50", "p95", "p99"):
        fig.add_trace(go.Scatter(x=t, y=[getattr(k.latency, name) for k in log.ticks], name=name), 2, 1)
    pids = sorted({w.pid for k in log.ticks for w in k.workers})
    for pid in pids:
        ys = [next((w.cpu_percent for w in k.workers if w.pid == pid), None) for k in log.ticks]
        fig.add_trace(go.Scatter(x=t, y=ys, name=f"worker {pid}"), 3, 1)
    fig.add_trace(go.Scatter(x=t, y=[k.loadgen.cpu_percent if k.loadgen else None for k in log.ticks],
                             name="load generator", line={"dash": "dot"}), 3, 1)  # fmt: skip
    states = sorted({s for k in log.ticks if k.db for s in k.db.by_state})
    for state in states:
        fig.add_trace(go.Scatter(x=t, y=[k.db.by_state.get(state, 0) if k.db else None for k in log.ticks],
                                 name=f"db {state}", stackgroup="db"), 4, 1)  # fmt: skip
    fig.add_trace(go.Scatter(x=t, y=[sum(p.waiting for p in k.pools) for k in log.ticks], name="pool waiting"), 4, 1)
    for ev in log.events:
        if ev.kind in ("config", "mark", "restart", "workers", "applied"):
            fig.add_vline(x=ev.t, line_dash="dash", line_color="gray", opacity=0.5)
            fig.add_annotation(x=ev.t, y=1.0, yref="paper", text=html.escape(ev.message[:30]), showarrow=False,
                               textangle=-90, xanchor="left", font={"size": 9})  # fmt: skip
    fig.update_layout(height=1100, title=f"{log.path.name}", hovermode="x unified")
    fig.update_xaxes(title_text="seconds since start", row=4, col=1)
    return [fig]


def _segment_table(segs: list[segments.Segment]) -> str:
    best = segments.best(segs)
    cols = ("label", "steady_seconds", "rps", "fail_rps", "p50", "p95", "p99", "cpu_per_worker",
            "loadgen_cpu_percent", "db_connections", "pool_waiting", "findings")  # fmt: skip
    head = "".join(f"<th>{c.replace('_', ' ')}</th>" for c in cols)
    rows = []
    for s in segs:
        d = s.to_dict()
        cls = ' class="best"' if best is not None and s.index == best.index and len(segs) > 1 else ""
        cells = "".join(f"<td>{html.escape(', '.join(v) if isinstance(v, list) else '—' if v is None else str(v))}</td>"
                        for v in (d[c] for c in cols))  # fmt: skip
        rows.append(f"<tr{cls}>{cells}</tr>")
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def render(logs: list[SessionLog]) -> str:
    """The report's HTML."""
    parts = ["<!doctype html><meta charset='utf-8'><title>loadtui report</title><style>"
             "body{font-family:system-ui,sans-serif;margin:2em}table{border-collapse:collapse;margin:1em 0}"
             "td,th{border:1px solid #ccc;padding:4px 8px;font-size:13px}tr.best{background:#d8f5d0}"
             "</style><h1>loadtui report</h1>"]  # fmt: skip
    first = True
    for log in logs:
        m = log.header.get("machine", {})
        parts.append(f"<h2>{html.escape(log.path.name)}</h2><p>started {html.escape(str(log.header.get('started_at')))}"
                     f" · {m.get('cpu_count')} cores · {int(m.get('memory_bytes', 0)) // 2**30} GiB"
                     f"{' · <b>cut off (killed session)</b>' if log.truncated else ''}</p>")  # fmt: skip
        parts.append(f"<pre>{html.escape(str(log.header.get('config')))}</pre>")
        parts.append("<h3>Segments (steady state, settling seconds excluded; best highlighted)</h3>")
        parts.append(_segment_table(log_segments(log)))
        findings = [e for e in log.events if e.kind in ("finding-started", "finding-ended")]
        parts.append("<h3>Findings timeline</h3><ul>" + "".join(
            f"<li>{e.t:.0f} s — {html.escape(e.kind)}: {html.escape(e.message)} {html.escape(str(e.data.get('evidence', '')))}</li>"
            for e in findings) + "</ul>" if findings else "<h3>Findings</h3><p>none</p>")  # fmt: skip
        for fig in _figures(log):
            parts.append(fig.to_html(full_html=False, include_plotlyjs=first))
            first = False
    if len(logs) > 1:
        rows = []
        for log in logs:
            for s in log_segments(log):
                rows.append((log.path.name, s))
        parts.append("<h2>Comparison</h2>" + _segment_table([s for _, s in rows]))
    return "\n".join(parts)


def write_csv(log: SessionLog, directory: Path) -> None:
    """Per-second ticks (columns like Locust's stats history) and the segment table, as CSV."""
    directory.mkdir(parents=True, exist_ok=True)
    stem = log.path.stem
    with open(directory / f"{stem}_ticks.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["Timestamp", "User Count", "Requests/s", "Failures/s", "50%", "95%", "99%", "Max",
                    "App CPU %", "Workers", "Loadgen CPU %", "DB connections", "Pool waiting"])  # fmt: skip
        for k in log.ticks:
            w.writerow([k.t, k.users, k.rps, k.fail_rps, k.latency.p50, k.latency.p95, k.latency.p99, k.latency.max,
                        round(k.app_cpu_percent, 1), len(k.workers), k.loadgen.cpu_percent if k.loadgen else "",
                        k.db.connections if k.db else "", sum(p.waiting for p in k.pools)])  # fmt: skip
    segs = log_segments(log)
    with open(directory / f"{stem}_segments.csv", "w", newline="") as f:
        fields = [k for k in segs[0].to_dict() if k != "config"] if segs else ["index"]
        w2 = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        w2.writeheader()
        for s in segs:
            w2.writerow(s.to_dict())


def write_report(files: list[Path], output: Path, csv_dir: Path | None = None) -> int:
    """`loadtui report`: returns the exit status."""
    logs = [read_log(f) for f in files]
    for log in logs:
        if not log.ticks:
            raise UsageError(f"{log.path} holds no seconds of measurements; record a longer session")
    try:
        output.write_text(render(logs), encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write {output} ({exc.strerror}); pass a writable -o") from None
    if csv_dir is not None:
        for log in logs:
            write_csv(log, csv_dir)
    print(f"loadtui: wrote {output}" + (f" and CSV files in {csv_dir}" if csv_dir else ""))
    return 0
