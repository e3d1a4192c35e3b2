"""The event loop held by a blocking call, from the helper's loop lag or loadtui's probe requests."""

from __future__ import annotations

import statistics

from loadtui.diagnose.thresholds import THRESHOLDS
from loadtui.diagnose.window import Window, once
from loadtui.model import Finding
from loadtui.units import ms

BLOCKED_TITLE = "The event loop is blocked: requests wait in line while the CPU idles"

BLOCKED_ADVICE = (
    "A blocking call runs inside `async def` (time.sleep, requests, a sync driver). Make it async, or declare the "
    "endpoint with plain `def` so it runs in the threadpool; press p (headless samples it by itself) for the frame it is stuck in."
)


@once
def event_loop_blocked(w: Window) -> Finding | None:
    """Requests wait for the event loop while the CPU idles: something blocks inside `async def` (a sync call).

    With the helper: its loop-lag figure. Without it: loadtui's probe requests (probe.py), which run no app code but
    need the loop to accept, read and answer them; when they wait as long as the users' requests (and far longer than
    the millisecond a 404 takes), the loop runs nothing while a call blocks it. Low CPU tells blocking from busy.
    """
    if w.p50 is None or w.rps < THRESHOLDS.min_rps or w.app_cpu_mean > THRESHOLDS.idle_cpu:
        return None
    lags = [x.loop_lag_ms for t in w.ticks for x in t.workers if x.loop_lag_ms is not None]
    if lags:
        lag = statistics.fmean(lags)
        if lag < THRESHOLDS.loop_lag_ms:
            return None
        return Finding(
            id="event-loop-blocked",
            severity="critical",
            title=BLOCKED_TITLE,
            evidence=f"event-loop lag {lag:.0f} ms on average, worker CPU {w.app_cpu_mean:.0f}%, p50 {ms(w.p50)} at "
            f"{w.rps:.0f} req/s ({w.per_worker_text()})",
            advice=BLOCKED_ADVICE,
            signals=["helper", "process"],
        )
    probe = w.probe_wait
    if probe is None or probe < THRESHOLDS.probe_blocked_ms or probe < THRESHOLDS.probe_blocked_share * w.p50:
        return None
    return Finding(
        id="event-loop-blocked",
        severity="critical",
        title=BLOCKED_TITLE,
        evidence=f"probe requests to a path the app does not route (a 404 that runs none of its code, normally 1–3 ms) "
        f"waited {ms(probe)}, users' p50 {ms(w.p50)}, worker CPU {w.app_cpu_mean:.0f}% at {w.rps:.0f} req/s "
        f"({w.per_worker_text()}): the loop runs nothing while a call blocks it",
        advice=BLOCKED_ADVICE,
        signals=["probe", "process"],
    )
