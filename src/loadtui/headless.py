"""Headless mode: the same session without a terminal UI — a line per second and a summary table at the end."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, TextIO

from loadtui.config import RunConfig
from loadtui.diagnose import RANK, cause_text
from loadtui.errors import RunFailed, UsageError
from loadtui.model import Event, Tick, named_by
from loadtui.results.compare import DEFAULT_MAX_REGRESSION, EXIT_REGRESSION, compare, format_comparison
from loadtui.results.recorder import SessionLog, read_log
from loadtui.results.segments import Segment
from loadtui.results.summary import Summary
from loadtui.results.verdict import Slo, StepResult
from loadtui.session.core import Session
from loadtui.session.driver import Driver, JobName
from loadtui.session.plan import DEFAULT_STEP_S, Plan, PlanRunner
from loadtui.units import num

EXIT_SLO_MISSED = 3

"""Exit status when an SLO was missed (0 met, 1 the run failed, 2 bad input), so CI can gate on it."""

HEADER = f"{'t':>5} {'users':>5} {'req/s':>8} {'fail/s':>7} {'p50':>6} {'p95':>6} {'p99':>6}  {'worker CPU %':<22} {'lg CPU':>6} {'db conn':>8}"


def format_tick(tick: Tick) -> str:
    """One compact line for a second."""
    cpus = " ".join(f"{w.cpu_percent:.0f}" for w in tick.workers) or "—"
    db = f"{tick.db.connections}/{tick.db.max_connections}" if tick.db else "—"
    lg = num(tick.loadgen_cpu_percent)
    line = (
        f"{tick.t:5.0f} {tick.users:5d} {tick.rps:8.1f} {tick.fail_rps:7.1f} {num(tick.latency.p50):>6} "
        f"{num(tick.latency.p95):>6} {num(tick.latency.p99):>6}  {cpus:<22} {lg:>6} {db:>8}"
    )
    if tick.retried_rps:
        line += f"  retried {tick.retried_rps:.1f}/s"
    if tick.open is not None:
        o = tick.open
        line += f"  rate {o.target_rate:g}→{o.achieved_rate:.1f}/s in flight {o.in_flight}"
        if o.dropped_rps:
            line += f" dropped {o.dropped_rps:.1f}/s"
        line += f" service p95 {num(o.service.p95)}"
    if tick.findings:
        line += "  ! " + ", ".join(f.id for f in tick.findings)
    return line


def format_event(event: Event, verbose: bool = False) -> str:
    """One line for an event (a stack sample summarised to its verdict unless `verbose`)."""
    message = event.message if verbose or event.kind != "confirmation" else short_confirmation(event.message)
    return f"{event.t:5.0f} · {event.kind}: {message}"


SHORT_CHARS = 150
"""A summarised stack sample is at most this long."""


def short_confirmation(text: str) -> str:
    """A py-spy confirmation's verdict: the busiest worker's first line ("worker 12: event loop BUSY in f (a.py:3)
    (3 of 3 samples)"), the rest left to the log and --verbose."""
    first = text.removeprefix("py-spy: ").split(" | ")[0].split("; ")[0].split(" — ")[0]
    first = first if len(first) <= SHORT_CHARS else first[: SHORT_CHARS - 1] + "…"
    return f"py-spy: {first} (full stacks in the log, or --verbose)"


def _open_figures(seg: Segment) -> str:
    """A segment run by arrival rate: what was asked and finished, dropped, and the service time's p95."""
    if seg.target_rate is None:
        return ""
    text = f"  asked {num(seg.target_rate, '.1f')}/s finished {num(seg.achieved_rate, '.1f')}/s"
    if seg.dropped_rps:
        text += f" dropped {num(seg.dropped_rps, '.1f')}/s"
    return text + f" service p95 {num(seg.service_p95)}"


def format_summary(summary: Summary, findings: list[tuple[str, str, str]] | None = None) -> str:
    """The segment table (and findings) printed at the end."""
    rows = [
        f"{'#':>2} {'configuration':<48} {'secs':>4} {'req/s':>8} {'fail/s':>7} {'p50':>6} {'p95':>6} {'p99':>6} "
        f"{'CPU/worker':>10} {'lg CPU':>6} {'db conn':>7}"
    ]
    for seg in summary.segments:
        mark = "*" if seg.index == summary.best_segment and len(summary.segments) > 1 else " "
        rows.append(
            f"{seg.index:>2}{mark}{seg.label[:48]:<48} {seg.steady_seconds:>4} {num(seg.rps, '.1f'):>8} "
            f"{num(seg.fail_rps, '.1f'):>7} {num(seg.p50):>6} {num(seg.p95):>6} {num(seg.p99):>6} "
            f"{num(seg.cpu_per_worker):>10} {num(seg.loadgen_cpu_percent):>6} {num(seg.db_connections):>7}"
            + _open_figures(seg)
        )
    out = "\n".join(rows)
    if findings:
        out += "\n\nFindings:\n" + "\n".join(
            f"  [{sev}] {title}\n      {evidence}" for sev, title, evidence in findings
        )
    elif summary.segments:
        out += "\n\nFindings: none — no bottleneck detected by the rules."
    return out


def format_plan(summary: Summary, slos: list[Slo]) -> str:
    """A sweep's table, a row per step (the measured seconds only), the winner marked, then the verdict."""
    slo_col = f" {'SLOs':>6}" if slos else ""
    rows = [
        f"{'#':>2}  {'step':<34} {'secs':>4} {'req/s':>8} {'fail %':>6} {'p50':>6} {'p95':>6} {'p99':>6} "
        f"{'CPU/worker':>10} {'lg CPU':>6}{slo_col}  note"
    ]
    won = summary.verdict.segment if summary.verdict else None
    for i, step in enumerate(summary.plan, 1):
        seg = step.segment
        mark = "*" if won is not None and seg.index == won and not step.note else " "
        fail = 100.0 * (seg.fail_rps or 0.0) / seg.rps if seg.rps else None
        met = ""
        if slos:
            met = f" {('met' if all(s.met(seg) for s in slos) else 'missed') if seg.rps is not None else '—':>6}"
        rows.append(
            f"{i:>2}{mark} {step.label[:34]:<34} {seg.steady_seconds:>4} {num(seg.rps, '.1f'):>8} "
            f"{num(fail, '.1f'):>6} {num(seg.p50):>6} {num(seg.p95):>6} {num(seg.p99):>6} "
            f"{num(seg.cpu_per_worker):>10} {num(seg.loadgen_cpu_percent):>6}{met}  {step.note}".rstrip()
        )
    verdict = summary.verdict
    if verdict is not None:
        rows.append("")
        rows.append(f"Verdict: {verdict.why}" if verdict.segment is not None else f"Verdict: none — {verdict.why}")
    return "\n".join(rows)


def format_slo_checks(summary: Summary) -> str:
    """`--slo` on a run without a sweep: each objective, met or missed, per segment."""
    lines = [f"  {check}" for check in summary.slo_checks]
    head = "SLOs: all met" if summary.slos_met else "SLOs: MISSED (exit status 3)"
    return head + "\n" + "\n".join(lines)


def step_overheads(results: list[StepResult], overheads: list[float]) -> str:
    """Seconds each step spent applying and settling before it was measured."""
    return ", ".join(f"{r.label} {o:.1f} s" for r, o in zip(results, overheads, strict=False))


def _findings(session: Session) -> list[tuple[str, str, str]]:
    """Every finding the run named, root causes first: (severity, title, evidence), a consequence saying of what.

    A finding still active at the end reads as the diagnosis judged it last (it may have become a consequence of
    one that started after it); one that ended reads as it started. A consequence is named only after a cause that
    the run named.
    """
    last = {f.id: f for f in session.ticks[-1].findings} if session.ticks else {}
    named: dict[str, tuple[str, str, str, str | None]] = {}
    for e in session.events:
        if e.kind == "finding-started":
            fid = str(e.data.get("id"))
            cause = last[fid].consequence_of if fid in last else e.data.get("consequence_of")
            named[fid] = (str(e.data.get("severity")), e.message, _evidence(e), str(cause) if cause else None)
    rows = {
        fid: (sev, title, evidence, cause if cause in named else None)
        for fid, (sev, title, evidence, cause) in named.items()
    }
    ranked = sorted(rows.items(), key=lambda kv: (kv[1][3] is not None, RANK.get(kv[0], len(RANK))))
    return [
        (sev, f"{title} ({cause_text(fid, cause)})" if cause else title, evidence)
        for fid, (sev, title, evidence, cause) in ranked
    ]


def _evidence(event: Event) -> str:
    """A finding's evidence, with what named it."""
    text = str(event.data.get("evidence"))
    signals = event.data.get("signals")
    return f"{text} ({named_by(signals)})" if isinstance(signals, list) and signals else text


def run(
    config: RunConfig,
    duration: float | None,
    stdout: TextIO = sys.stdout,
    stderr: TextIO = sys.stderr,
    on_open: Callable[[Session], None] | None = None,
    confirm: bool = False,
    plan: Plan | None = None,
    slos: list[Slo] | None = None,
    step_s: float = DEFAULT_STEP_S,
    verbose: bool = False,
    baseline: SessionLog | None = None,
    max_regression: float = DEFAULT_MAX_REGRESSION,
) -> int:
    """Run a session for `duration` seconds of load (or until the `plan` is done); return the exit status.

    0 ok, 1 the run failed, 3 an SLO was missed (by every step of a sweep, or by the run), 4 a figure significantly
    worse than the `baseline` by more than `max_regression` percent, 128 + the signal when interrupted (130 for
    Ctrl-C), after the summary. With `confirm`, each warning or critical finding is confirmed
    once with a py-spy dump of the busiest workers (one line each unless `verbose`). A reader that closes the output
    (`| head`) ends the run cleanly; the log keeps every second.
    """
    slos = slos or []
    done = threading.Event()
    lock = threading.Lock()
    out = Output(stdout, done.set)
    err = Output(stderr, done.set)
    interrupted: list[int] = []

    def say(msg: str) -> None:
        err.write(f"loadtui: {msg}\n")

    def on_tick(tick: Tick) -> None:
        with lock:
            out.write(format_tick(tick) + "\n")

    def on_event(event: Event) -> None:
        with lock:
            err.write(format_event(event, verbose) + "\n")
        if event.kind in ("loadgen-exited", "app-exited"):
            done.set()

    def on_done(name: JobName, ok: bool, message: str, _bad_input: bool) -> None:
        if ok:
            return
        if name == "open":
            done.set()  # run() raises the driver's open_error
        elif name == "auto-confirm":
            say(f"cannot confirm with py-spy: {message}")  # said once: the driver stops trying
        else:
            say(f"{name}: {message}")

    session = Session(config, on_tick=on_tick, on_event=on_event, slos=slos)
    runner = PlanRunner(plan, slos, step_s) if plan is not None else None
    driver = Driver(session, on_done=on_done, progress=say, plan=runner, auto_confirm=confirm)

    def stop(signum: int, _frame: Any) -> None:
        interrupted.append(signum)
        err.write(f"loadtui: {signal.Signals(signum).name}, stopping\n")
        session.abort()  # a restart or a stack dump under way gives up instead of waiting
        done.set()

    previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)}
    status = 0
    summary: Summary | None = None
    try:
        driver.start()
        while not (driver.opened.wait(0.1) or done.is_set()):
            pass
        if driver.open_error is not None:
            raise driver.open_error
        if driver.opened.is_set():
            if on_open is not None:
                on_open(session)
            if plan is not None:
                say(f"sweep of {len(plan.steps)} step(s), about {plan.estimate_s(step_s, config):.0f} s")
            out.write(HEADER + "\n")
            deadline = time.monotonic() + (duration if duration is not None else float("inf"))
            while not done.wait(min(0.2, max(0.0, deadline - time.monotonic()))):
                if time.monotonic() >= deadline or (runner is not None and runner.finished):
                    break
        if session.failed:
            say(session.failed)
            status = 1
    except RunFailed as exc:
        say(str(exc))
        status = 1
    finally:
        if runner is not None and not runner.finished:
            runner.stop("the run ended before the last step" if status == 0 else "the run failed")
        summary = driver.close()
        for s, handler in previous.items():
            signal.signal(s, handler)
    if summary is not None:
        found = _findings(session)
        found += [
            ("py-spy", "stack dump", (e.message if verbose else short_confirmation(e.message)).removeprefix("py-spy: "))
            for e in session.events
            if e.kind == "confirmation"
        ]
        out.write("\n" + format_summary(summary, found) + "\n")
        if runner is not None:
            out.write("\n" + format_plan(summary, slos) + "\n")
            say(f"time outside measurement per step: {step_overheads(runner.results, runner.overheads)}")
        elif slos:
            out.write("\n" + format_slo_checks(summary) + "\n")
        if status == 0 and not summary.slos_met:
            status = EXIT_SLO_MISSED
    if baseline is not None and summary is not None and status == 0 and not interrupted:
        status = _against_baseline(baseline, session, max_regression, out, err)
    if session.recorder is not None:
        say(f"session log {session.record_path}")
    if interrupted and status in (0, EXIT_SLO_MISSED):
        return 128 + interrupted[0]
    return status


def _against_baseline(baseline: SessionLog, session: Session, max_regression: float, out: Output, err: Output) -> int:
    """Compare the run just recorded with the baseline; EXIT_REGRESSION when a figure is significantly worse by more
    than `max_regression` percent."""
    try:
        new = read_log(session.record_path, slim=True)
    except UsageError as exc:
        err.write(f"loadtui: cannot compare with the baseline: {exc}\n")
        return 0
    result = compare(baseline, new, max_regression)
    out.write("\n" + format_comparison(result, baseline.path.name, session.record_path.name) + "\n")
    return EXIT_REGRESSION if result.regressions else 0


class Output:
    """A text stream that a reader may close (`loadtui headless | head`): the first broken write ends the run
    (`closed` is called) instead of killing the thread that wrote, and later writes go nowhere."""

    def __init__(self, stream: TextIO, closed: Callable[[], object]) -> None:
        self._stream = stream
        self._closed = closed
        self.broken = False

    def write(self, text: str) -> None:
        if self.broken:
            return
        try:
            self._stream.write(text)
            self._stream.flush()
        except (BrokenPipeError, ValueError, OSError):
            self.broken = True
            self._closed()
            try:
                # Python flushes sys.stdout again at exit: point the descriptor at /dev/null so that is quiet too.
                os.dup2(os.open(os.devnull, os.O_WRONLY), self._stream.fileno())
            except (OSError, ValueError, AttributeError):
                pass
