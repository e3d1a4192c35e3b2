"""The dashboard's panels. Each renders a Tick it is given (attributes down); none reads the session."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Sparkline, Static

from loadtui.measure.remote import STALE_S as REMOTE_STALE_S
from loadtui.model import Event, Tick, named_by
from loadtui.session.plan import PlanView
from loadtui.units import mib, ms, num

HISTORY = 120
"""Seconds of history the charts keep (bounded: memory stays flat in long sessions)."""

STALE_S = 1.5
"""A worker's record older than this is not a count of now."""

BLOCKED_LAG_MS = 100.0
"""Above this event-loop lag, a worker's in-flight count misses the requests waiting for its loop."""

SEVERITY_STYLE = {"critical": "bold red", "warning": "bold yellow", "info": "cyan"}


class TextTable(Static):
    """A table of text: a header and rows, first column left-aligned, the rest right-aligned.

    The panels' tables change every second and are read, not navigated, so one Text is built per change instead of
    a DataTable, whose per-cell rendering cost most of the dashboard's CPU (about 60% at 8 workers).
    """

    def __init__(self, *columns: str, id: str) -> None:
        super().__init__(id=id, classes="text-table")
        self.columns = columns
        self.rows: list[list[str]] = []
        """The rows shown now, as text cells."""
        self.set_rows([])

    @property
    def row_count(self) -> int:
        """How many rows are shown."""
        return len(self.rows)

    def set_rows(self, rows: Sequence[Sequence[str]]) -> None:
        """Show `rows` (does nothing when they did not change)."""
        new = [list(r) for r in rows]
        if new == self.rows and self.rows:
            return
        self.rows = new
        widths = [max([len(c)] + [len(r[i]) for r in new]) for i, c in enumerate(self.columns)]

        def line(cells: Sequence[str]) -> str:
            return " ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))  # noqa: B905

        text = Text(line(self.columns), style="bold", no_wrap=True, overflow="ellipsis")
        for row in new:
            text.append("\n" + line(row), style="")
        self.update(text)


class Panel(Vertical):
    """A bordered panel with a title."""

    def __init__(self, title: str, *, id: str) -> None:
        super().__init__(id=id, classes="panel")
        self.border_title = title


class LoadPanel(Panel):
    """Users, requests/s, failures/s, latency now; charts of requests/s and p95."""

    def __init__(self) -> None:
        super().__init__("Load", id="load")
        self._rps: deque[float] = deque(maxlen=HISTORY)
        self._p95: deque[float] = deque(maxlen=HISTORY)

    def compose(self) -> ComposeResult:
        yield Static(id="load-numbers")
        yield Static("requests/s", classes="chart-label")
        yield Sparkline([], id="rps-chart")
        yield Static("p95 latency (ms)", classes="chart-label")
        yield Sparkline([], id="p95-chart")

    def show(self, tick: Tick, against: str | None = None) -> None:
        """Render one second (`against`: the live figures against a baseline, `--baseline`)."""
        self._rps.append(tick.rps)
        self._p95.append(tick.latency.p95 or 0.0)
        text = Text()
        opened = tick.open
        if opened is None:
            text.append(f"users {tick.users}   ", style="bold")
        text.append(f"{tick.rps:,.1f} req/s   ", style="bold green")
        text.append(f"{tick.fail_rps:,.1f} fail/s", style="bold red" if tick.fail_rps else "dim")
        if tick.retried_rps:
            # Sent again after a closing worker dropped them unread: shown, never hidden in the totals.
            text.append(f"   {tick.retried_rps:,.1f} retried/s", style="bold yellow")
        text.append("\n")
        lat = tick.latency
        if opened is not None:
            # The open model: what was asked, what was done, what could not start, and both latencies.
            behind = opened.achieved_rate < 0.95 * opened.target_rate
            text.append(f"rate {opened.target_rate:,.1f}/s → done {opened.achieved_rate:,.1f}/s", style="bold")
            text.append(f"   in flight {opened.in_flight:,}", style="bold yellow" if behind else "")
            text.append(f"   dropped {opened.dropped_rps:,.1f}/s\n", style="bold red" if opened.dropped_rps else "dim")
            text.append("from intended start ", style="dim")
        text.append(f"p50 {ms(lat.p50)}  p95 {ms(lat.p95)}  p99 {ms(lat.p99)}  max {ms(lat.max)}")
        if opened is not None:
            sv = opened.service
            text.append(f"\nservice only         p50 {ms(sv.p50)}  p95 {ms(sv.p95)}  p99 {ms(sv.p99)}", style="dim")
        if against:
            text.append("\n" + against, style="cyan")
        self.query_one("#load-numbers", Static).update(text)
        if len(self._rps) > 1:  # one point alone would fill the chart: a height means something against another
            self.query_one("#rps-chart", Sparkline).data = list(self._rps)
            self.query_one("#p95-chart", Sparkline).data = list(self._p95)


class EndpointsPanel(Panel):
    """Per-endpoint figures and grouped errors."""

    def __init__(self) -> None:
        super().__init__("Endpoints (this second)", id="endpoints")

    def compose(self) -> ComposeResult:
        yield TextTable("endpoint", "req/s", "fail/s", "p50 ms", "p95 ms", "p99 ms", id="endpoint-table")
        yield Static(id="errors")

    def show(self, tick: Tick) -> None:
        """Render one second."""
        self.query_one("#endpoint-table", TextTable).set_rows(
            [
                [
                    f"{e.method} {e.name}",
                    f"{e.rps:,.1f}",
                    f"{e.fail_rps:,.1f}",
                    *(("—" if v is None else f"{v:,.0f}") for v in (e.p50, e.p95, e.p99)),
                ]
                for e in sorted(tick.endpoints, key=lambda e: -e.rps)
            ]
        )
        errors = Text()
        for err in sorted(tick.errors, key=lambda e: -e.count)[:4]:
            errors.append(f"{err.count:>6}× ", style="bold red")
            errors.append(f"{err.method} {err.name}: {err.error[:90]}\n")
        self.query_one("#errors", Static).update(errors)


class AppPanel(Panel):
    """One row per worker, the supervisor, total CPU against the cores."""

    def __init__(self) -> None:
        super().__init__("App workers", id="app")
        self._history: dict[int, deque[float]] = {}

    def compose(self) -> ComposeResult:
        yield TextTable("pid", "CPU %", "MiB", "in flight", "lag ms", "threads", "CPU history", id="worker-table")
        yield Static(id="app-total")

    def show(self, tick: Tick) -> None:
        """Render one second."""
        rows = []
        unknown = False
        for w in tick.workers:
            hist = self._history.setdefault(w.pid, deque(maxlen=12))
            hist.append(w.cpu_percent)
            # A blocked loop cannot count what waits for it: its last record is old, or written between stalls.
            cannot_report = w.in_flight is not None and (
                (w.stale_s or 0.0) > STALE_S or (w.loop_lag_ms or 0.0) > BLOCKED_LAG_MS
            )
            unknown = unknown or cannot_report
            rows.append(
                [
                    w.name + (" (stale)" if w.host and (w.stale_s or 0.0) > REMOTE_STALE_S else ""),
                    f"{w.cpu_percent:.0f}",
                    f"{w.rss_bytes / 2**20:,.0f}",
                    "?" if cannot_report else "—" if w.in_flight is None else str(w.in_flight),
                    "—" if w.loop_lag_ms is None else f"{w.loop_lag_ms:,.0f}",
                    "—" if w.threads is None else str(w.threads),
                    _bars(hist).ljust(12),
                ]
            )
        self.query_one("#worker-table", TextTable).set_rows(rows)
        for pid in set(self._history) - {w.pid for w in tick.workers}:
            del self._history[pid]
        total = Text()
        total.append(
            f"{len(tick.workers)} worker(s) · {tick.app_cpu_percent:.0f}% of {tick.cpu_count * 100}% "
            f"({tick.cpu_count} cores)",
            style="bold",
        )
        if tick.app is not None:
            total.append(f" · supervisor {tick.app.pid}: {tick.app.cpu_percent:.0f}% CPU, {mib(tick.app.rss_bytes)}")
        if tick.machine_cpu_percent is not None:
            total.append(f" · machine {tick.machine_cpu_percent:.0f}%")
        if unknown:
            total.append("\n? in flight: unknown, the worker cannot report (its event loop is blocked)", style="yellow")
        if tick.probe is not None:
            probe = tick.probe
            total.append(f"\nprobe (a path the app does not route): {ms(probe.wait_ms)} fresh, ")
            total.append(f"{ms(probe.kept_p50_ms)} kept alive")
            if probe.failed:
                total.append(f", {probe.failed} failed", style="yellow")
        self.query_one("#app-total", Static).update(total)


def _bars(values: deque[float]) -> str:
    blocks = " ▁▂▃▄▅▆▇█"
    return "".join(blocks[min(8, int(v / 100 * 8))] for v in values)


class LoadgenPanel(Panel):
    """The load generator's own CPU, per process."""

    def __init__(self) -> None:
        super().__init__("Load generator", id="loadgen")

    def compose(self) -> ComposeResult:
        yield Static(id="loadgen-numbers")

    def show(self, tick: Tick) -> None:
        """Render one second."""
        text = Text()
        lg = tick.loadgen
        if lg is None:
            text.append("not running", style="dim")
        else:
            limit = lg.cores * 100
            style = "bold red" if lg.cpu_percent >= 0.9 * limit else "bold"
            text.append(f"CPU {lg.cpu_percent:.0f}% of {limit}% ", style=style)
            text.append(f"({lg.cores} process{'es' if lg.cores > 1 else ''})\n")
            text.append("  ".join(f"{p.pid}: {p.cpu_percent:.0f}%" for p in lg.per_process), style="dim")
        self.query_one("#loadgen-numbers", Static).update(text)


class DatabasePanel(Panel):
    """Connections by state against max_connections; pools per worker."""

    def __init__(self) -> None:
        super().__init__("PostgreSQL", id="database")

    def compose(self) -> ComposeResult:
        yield Static(id="db-numbers")
        yield TextTable("pool of", "size/max", "idle", "waiting", "wait ms/s", "errors", id="pool-table")

    def show(self, tick: Tick) -> None:
        """Render one second."""
        text = Text()
        db = tick.db
        if db is None:
            text.append("no database figures", style="dim")
        else:
            allowed = db.allowed
            style = "bold red" if db.connections >= allowed - 1 else "bold"
            text.append(f"{db.connections} of {db.max_connections} connections", style=style)
            text.append(f" ({db.reserved} reserved)\n")
            text.append("  ".join(f"{state}: {n}" for state, n in sorted(db.by_state.items())), style="dim")
        self.query_one("#db-numbers", Static).update(text)
        self.query_one("#pool-table", TextTable).set_rows(
            [
                [
                    str(p.pid),
                    f"{p.size}/{p.max or '?'}",
                    str(p.available),
                    str(p.waiting),
                    f"{p.wait_ms:,.0f}",
                    str(p.errors),
                ]
                for p in tick.pools
            ]
        )


class DiagnosisPanel(Panel):
    """The active findings in plain words with their evidence."""

    def __init__(self) -> None:
        super().__init__("Diagnosis", id="diagnosis")

    def compose(self) -> ComposeResult:
        yield Static("waiting for the first seconds of load…", id="findings")

    def show(self, tick: Tick, judged: bool = True) -> None:
        """Render the findings of one second."""
        text = Text()
        if not tick.findings:
            if judged:
                text.append("✓ no bottleneck detected", style="bold green")
                text.append(" — the rules found nothing to report in the last seconds.", style="dim")
            else:
                text.append("collecting the first seconds…", style="dim")
        for f in tick.findings:
            text.append(f"[{f.severity}] ", style=SEVERITY_STYLE.get(f.severity, ""))
            text.append(f.title + "\n", style="bold")
            text.append(f"  {f.evidence}\n")
            if f.signals:
                text.append(f"  {named_by(f.signals)}\n", style="dim")
            if f.advice:
                text.append(f"  → {f.advice}\n", style="italic")
            if f.confirmation:
                text.append(f"  ✓ py-spy: {f.confirmation}\n", style="cyan")
        self.query_one("#findings", Static).update(text)


class EventsPanel(Panel):
    """Restarts, worker changes, failures, config changes, with times."""

    def __init__(self) -> None:
        super().__init__("Events", id="events")
        self._lines: deque[Text] = deque(maxlen=200)

    def compose(self) -> ComposeResult:
        yield Static(id="event-lines")

    def add(self, event: Event) -> None:
        """Show one more event (newest first)."""
        style = "red" if "fail" in event.kind or "exit" in event.kind or event.kind == "error" else ""
        line = Text()
        line.append(f"{_clock(event.t)} ", style="dim")
        line.append(f"{event.kind}: ", style="bold " + style)
        line.append(event.message)
        self._lines.appendleft(line)
        self.query_one("#event-lines", Static).update(Text("\n").join(list(self._lines)[:30]))


class PlanPanel(Panel):
    """A sweep: its steps, the one running with its seconds left, each result as it comes, and the verdict."""

    STATE = {"settling": "settling", "measuring": "measuring", "next": "", "dropped": "not needed"}

    def __init__(self) -> None:
        super().__init__("Plan", id="plan")

    def compose(self) -> ComposeResult:
        yield Static(id="plan-status")
        yield TextTable("step", "state", "req/s", "p50 ms", "p95 ms", "fail/s", "SLOs", id="plan-table")
        yield Static(id="plan-verdict")

    def show(self, view: PlanView) -> None:
        """Render the plan as it stands."""
        done = sum(r.state in ("done", "skipped", "failed") for r in view.rows)
        status = Text()
        if view.phase == "done":
            status.append(f"finished: {done} step(s) measured", style="bold")
            if view.stopped:
                status.append(f" · stopped: {view.stopped}", style="yellow")
        else:
            total = sum(r.state != "dropped" for r in view.rows)
            status.append(f"step {min(view.index + 1, total)}/{total}", style="bold")
            if view.remaining_s is not None:
                status.append(f" · {view.phase} · {view.remaining_s:.0f} s of measurement left")
            status.append("  n skip step · e end plan · any change by hand takes over", style="dim")
        self.query_one("#plan-status", Static).update(status)
        rows = []
        for row in view.rows:
            seg = row.result.segment if row.result is not None else None
            state = self.STATE.get(row.state, row.state) if row.result is None or row.state != "done" else "done"
            if row.result is not None and row.result.note and row.state == "done":
                state = row.result.note
            slo = "" if row.slo_met is None else ("met" if row.slo_met else "missed")
            rows.append(
                [
                    row.label,
                    state,
                    num(seg.rps, ".1f") if seg else "",
                    num(seg.p50) if seg else "",
                    num(seg.p95) if seg else "",
                    num(seg.fail_rps, ".1f") if seg else "",
                    slo,
                ]
            )
        self.query_one("#plan-table", TextTable).set_rows(rows)
        verdict = Text()
        if view.verdict is not None:
            won = view.verdict.segment is not None
            verdict.append("verdict: " if won else "no winner: ", style="bold green" if won else "bold red")
            verdict.append(view.verdict.why)
        self.query_one("#plan-verdict", Static).update(verdict)


def _clock(t: float) -> str:
    minutes, seconds = divmod(int(t), 60)
    return f"{minutes:02d}:{seconds:02d}"
