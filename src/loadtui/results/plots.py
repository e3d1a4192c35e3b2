"""The report's plots (plotly): the session over time, the findings' timeline, runs overlaid, a sweep's steps.

Built lazily (plotly is imported inside each function), styled in one place (:data:`LOOK`).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

from loadtui.results.recorder import SessionLog

TIMELINE_EVENTS = ("config", "mark", "restart", "restart-failed", "workers", "applied", "app-exited", "paused")

SESSION_PANELS = (
    "requests/s and failures/s",
    "latency (ms)",
    "CPU (% of one core)",
    "PostgreSQL connections by state, and requests waiting for a pool connection",
)
"""The rows of the session's plot, top to bottom."""

LOOK: dict[str, Any] = {
    "session_height": 1150,
    "comparison_height": 600,
    "failure": {"color": "crimson"},
    "target": {"dash": "dash", "color": "gray"},
    "loadgen": {"dash": "dot", "color": "black"},
    "pool_waiting": {"color": "crimson", "dash": "dash"},
    "finding_bar": {"width": 14},
    "event_font_size": 9,
    "event_colors": {"mark": "darkorange", "failed": "crimson", "other": "gray"},
    "event_label_levels": 4,
    "run_colors": ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf"),
}
"""How the plots look (colours, sizes): one place to restyle them."""

# -- figures -----------------------------------------------------------------------------------------------------


def session_figure(log: SessionLog) -> Any:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    ticks = log.ticks
    t = [k.t for k in ticks]
    fig = make_subplots(
        rows=len(SESSION_PANELS), cols=1, shared_xaxes=True, vertical_spacing=0.06, subplot_titles=SESSION_PANELS
    )
    fig.add_trace(go.Scatter(x=t, y=[k.rps for k in ticks], name="requests/s", legendgroup="load"), 1, 1)
    fig.add_trace(
        go.Scatter(x=t, y=[k.fail_rps for k in ticks], name="failures/s", legendgroup="load", line=LOOK["failure"]),
        1,
        1,
    )
    if any(k.open is not None for k in ticks):
        # The open model: what was asked beside what was done; the gap is the backlog growing.
        for name, values, look in (
            ("rate asked", [k.open.target_rate if k.open else None for k in ticks], LOOK["target"]),
            ("arrivals finished/s", [k.open.achieved_rate if k.open else None for k in ticks], None),
            ("dropped/s", [k.open.dropped_rps if k.open else None for k in ticks], LOOK["failure"]),
        ):
            fig.add_trace(go.Scatter(x=t, y=values, name=name, legendgroup="load", line=look), 1, 1)
        fig.add_trace(
            go.Scatter(
                x=t,
                y=[k.open.service.p95 if k.open else None for k in ticks],
                name="service p95",
                legendgroup="lat",
                line=LOOK["target"],
            ),
            2,
            1,
        )
    for name in ("p50", "p95", "p99"):
        fig.add_trace(go.Scatter(x=t, y=[getattr(k.latency, name) for k in ticks], name=name, legendgroup="lat"), 2, 1)
    per_worker: dict[str, list[float | None]] = {}
    for i, k in enumerate(ticks):
        for w in k.workers:
            per_worker.setdefault(w.name, [None] * len(ticks))[i] = w.cpu_percent
    for name in sorted(per_worker):
        fig.add_trace(go.Scatter(x=t, y=per_worker[name], name=html.escape(f"worker {name}"), legendgroup="cpu"), 3, 1)
    fig.add_trace(
        go.Scatter(
            x=t,
            y=[k.loadgen_cpu_percent for k in ticks],
            name="load generator",
            legendgroup="cpu",
            line=LOOK["loadgen"],
        ),
        3,
        1,
    )
    states = sorted({s for k in ticks if k.db for s in k.db.by_state})
    for state in states:
        fig.add_trace(
            go.Scatter(
                x=t,
                y=[k.db.by_state.get(state, 0) if k.db else None for k in ticks],
                name=html.escape(f"db {state}"),
                stackgroup="db",
                legendgroup="db",
            ),
            4,
            1,
        )
    fig.add_trace(
        go.Scatter(
            x=t,
            y=[k.pool_waiting or 0 for k in ticks],
            name="pool waiting",
            legendgroup="db",
            line=LOOK["pool_waiting"],
        ),
        4,
        1,
    )
    draw_events(fig, log)
    fig.update_layout(
        height=LOOK["session_height"], margin={"t": 60}, hovermode="x unified", legend={"groupclick": "toggleitem"}
    )
    fig.update_xaxes(title_text="seconds since start", row=4, col=1)
    return fig


def event_color(kind: str) -> str:
    """Marks in orange, failures and exits in red, other changes in gray."""
    colors = LOOK["event_colors"]
    if kind == "mark":
        return str(colors["mark"])
    if "fail" in kind or "exit" in kind:
        return str(colors["failed"])
    return str(colors["other"])


def label_levels(times: Sequence[float], span: float, levels: int) -> list[int]:
    """A height level for each event label so that labels close in time do not print over each other.

    A label within 1/40 of the time span of the one before moves one level down (cycling through `levels`).
    """
    out: list[int] = []
    gap = max(span, 1.0) / 40
    for i, t in enumerate(times):
        level = 0
        if i and t - times[i - 1] < gap:
            level = (out[-1] + 1) % levels
        out.append(level)
    return out


def draw_events(fig: Any, log: SessionLog) -> None:
    """Configuration changes, restarts and marks as labelled vertical lines across all plots."""
    shown = [ev for ev in log.events if ev.kind in TIMELINE_EVENTS]
    span = log.ticks[-1].t if log.ticks else 1.0
    levels = label_levels([ev.t for ev in shown], span, LOOK["event_label_levels"])
    for ev, level in zip(shown, levels, strict=True):
        color = event_color(ev.kind)
        fig.add_vline(x=ev.t, line_dash="dash", line_color=color, opacity=0.6)
        text = ev.data.get("note") or ev.message if ev.kind == "mark" else ev.message
        fig.add_annotation(
            x=ev.t,
            y=1.0 - 0.25 * level,
            yref="paper",
            text=html.escape(str(text)[:40]),
            showarrow=False,
            textangle=-90,
            xanchor="left",
            yanchor="top",
            font={"size": LOOK["event_font_size"], "color": color},
        )


def finding_intervals(log: SessionLog) -> dict[str, list[tuple[float, float]]]:
    """When each finding was active: (start, end) seconds, from the findings each tick carries."""
    spans: dict[str, list[tuple[float, float]]] = {}
    open_since: dict[str, float] = {}
    last_t = 0.0
    for k in log.ticks:
        active: set[str] = {f.id for f in k.findings}
        for fid in active - set(open_since):
            open_since[fid] = k.t
        for fid in set(open_since) - active:
            spans.setdefault(fid, []).append((open_since.pop(fid), k.t))
        last_t = k.t
    for fid, start in open_since.items():
        spans.setdefault(fid, []).append((start, last_t))
    return spans


def findings_figure(log: SessionLog) -> Any | None:
    import plotly.graph_objects as go

    spans = finding_intervals(log)
    if not spans:
        return None
    fig = go.Figure()
    for fid, intervals in sorted(spans.items()):
        xs: list[float | None] = []
        for start, end in intervals:
            xs += [start, end, None]
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=[html.escape(fid) if x is not None else None for x in xs],
                mode="lines",
                name=html.escape(fid),
                line=LOOK["finding_bar"],
            )
        )
    draw_events(fig, log)
    end = log.ticks[-1].t if log.ticks else 1
    fig.update_layout(
        height=120 + 40 * len(spans),
        showlegend=False,
        margin={"t": 30, "l": 160},
        xaxis={"range": [0, end], "title": "seconds since start"},
    )
    return fig


def comparison_figure(logs: Sequence[SessionLog]) -> Any:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(
        rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08, subplot_titles=("requests/s", "p95 latency (ms)")
    )
    colors = LOOK["run_colors"]
    for i, log in enumerate(logs):
        t = [k.t for k in log.ticks]
        name = html.escape(log.path.name)
        line = {"color": colors[i % len(colors)]}  # one colour per run in every plot, so lines match runs
        fig.add_trace(go.Scatter(x=t, y=[k.rps for k in log.ticks], name=name, legendgroup=name, line=line), 1, 1)
        fig.add_trace(
            go.Scatter(
                x=t, y=[k.latency.p95 for k in log.ticks], name=name, legendgroup=name, showlegend=False, line=line
            ),
            2,
            1,
        )
    fig.update_layout(height=LOOK["comparison_height"], hovermode="x unified", margin={"t": 40})
    fig.update_xaxes(title_text="seconds since start", row=2, col=1)
    return fig


def sweep_figure(steps: Sequence[Any]) -> Any:
    """Requests/s and p95 of each step of a sweep (`steps`: each with a `label` and a `segment`)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    labels = [html.escape(s.label) for s in steps]
    fig = make_subplots(rows=1, cols=2, subplot_titles=("requests/s per step", "p95 latency per step (ms)"))
    fig.add_trace(go.Bar(x=labels, y=[s.segment.rps for s in steps], name="requests/s"), 1, 1)
    fig.add_trace(go.Bar(x=labels, y=[s.segment.p95 for s in steps], name="p95 ms", marker_color="#d62728"), 1, 2)
    fig.update_layout(height=360, showlegend=False, margin={"t": 40, "b": 40})
    return fig
