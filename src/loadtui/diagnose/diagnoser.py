"""Every rule once a second over the window (:func:`evaluate`), and :class:`Diagnoser`, which turns the raw results
into stable findings: hysteresis on start and end, causes shown before (and with) their consequences, and nothing
new judged while a fault lasts.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Callable, Sequence

from loadtui.config import RunConfig
from loadtui.diagnose.app import (
    app_concurrency_limit,
    backlog,
    nodelay_delay,
    queueing,
    serialized_without_helper,
    threadpool_saturated,
)
from loadtui.diagnose.database import (
    db_bound,
    db_connection_limit,
    lock_contention,
    pool_exhausted,
)
from loadtui.diagnose.loop import event_loop_blocked
from loadtui.diagnose.machine import (
    loadgen_saturated,
    machine_saturated,
    measurement_disturbed,
    too_few_workers,
    worker_imbalance,
)
from loadtui.diagnose.relations import RANK, exclude, order, relate
from loadtui.diagnose.thresholds import THRESHOLDS
from loadtui.diagnose.window import Window, probe_floor
from loadtui.model import Finding, Tick

RULES: tuple[Callable[[Window], Finding | None], ...] = (
    measurement_disturbed,
    machine_saturated,
    loadgen_saturated,
    db_connection_limit,
    event_loop_blocked,
    threadpool_saturated,
    lock_contention,
    pool_exhausted,
    db_bound,
    too_few_workers,
    worker_imbalance,
    nodelay_delay,
    backlog,
)
"""Rules over the window (the rules over the whole history follow in :func:`evaluate`)."""


def _window(ticks: Sequence[Tick], config: RunConfig, probe_base: float | None, baseline: Sequence[Tick]) -> Window:
    size = int(THRESHOLDS.window_s)
    base = probe_base if probe_base is not None else probe_floor(ticks)
    return Window(ticks[-size:], config, probe_base=base or 0.0, history=[*baseline, *ticks])


def findings(w: Window) -> list[Finding]:
    """Every rule once over the window (a rule that asks about another reads its kept result), those another rules out
    dropped (:data:`~loadtui.diagnose.relations.EXCLUDED_BY`), unrelated (see :func:`relate`) and unordered."""
    found = [f for rule in RULES if (f := rule(w)) is not None]
    history = w.history
    if not any(f.id == "event-loop-blocked" for f in found):
        fallback = serialized_without_helper(w, history)
        if fallback is not None:
            found.append(fallback)
    for rule in (app_concurrency_limit, queueing):
        f = rule(w, history)
        if f is not None:
            found.append(f)
    found = exclude(found)
    if any(f.id == "machine-saturated" for f in found) and all(
        f.severity == "info" for f in found if f.id not in ("machine-saturated", "measurement-disturbed")
    ):
        # A closed-loop test with no think time fills whatever cores it is given: with nothing slow beside it, a
        # busy machine is a fact worth showing, not a problem.
        found = [dataclasses.replace(f, severity="info") if f.id == "machine-saturated" else f for f in found]
    return found


def evaluate(
    ticks: Sequence[Tick], config: RunConfig, probe_base: float | None = None, baseline: Sequence[Tick] = ()
) -> list[Finding]:
    """Findings whose condition holds over the last window of `ticks` (no hysteresis), related and in order.

    `probe_base`: the fastest probe of the whole session (default: of `ticks`); `baseline`: earlier seconds with the
    fewest users, kept after `ticks` forgot them (the queueing rules compare with them).
    """
    if len(ticks) < THRESHOLDS.window_s:
        return []
    w = _window(ticks, config, probe_base, baseline)
    found = findings(w)
    return relate(found, {f.id for f in found}, w)


BASELINE_S = 5
"""Seconds at the fewest users the diagnoser keeps beyond its history (the first step lasts two)."""

FAULT_HOLD_S = 5.0
"""Seconds after a fault is over (the database back, a worker replaced) whose figures still carry its errors: the
pools reconnect, retried requests finish. The diagnosis judges none of them."""

FAULTS: dict[str, str] = {"db-lost": "db", "app-exited": "app"}
"""Faults that last until their end event (by what they take down)."""

FAULT_ENDS: dict[str, str] = {"db-back": "db", "app-started": "app"}

RESETS = ("applied", "workers")
"""Events after which the old seconds prove nothing: a configuration applied by restart, workers changed live."""

BRIEF_FAULTS = ("worker-exited", "worker-started", "loadgen-exited")
"""Events that disturb the figures for a moment (a worker dies and is replaced; the load generator is replaced)."""


class Diagnoser:
    """Keeps recent ticks and turns raw rule results into stable findings with start and end events.

    Stable in three ways: a finding starts after its condition held `start_after_s` seconds and ends after it was gone
    `clear_after_s` (hysteresis); a consequence is marked as such while its cause holds or was seen in the last
    `clear_after_s` seconds, and is not shown before its cause is (so the order does not flip); and while a fault
    lasts and for :data:`FAULT_HOLD_S` after it, nothing new is judged (its errors are the fault's, not a limit's).
    """

    def __init__(self, history: int = 60) -> None:
        self._ticks: deque[Tick] = deque(maxlen=history)
        self._streak: dict[str, int] = {}
        self._gone: dict[str, int] = {}
        self._seen: dict[str, float] = {}
        """When each id last held (session seconds)."""
        self._active: dict[str, Finding] = {}
        self._shown: set[str] = set()
        self._baseline: list[Tick] = []
        """The seconds with the fewest users since the last reset (see :meth:`_keep_baseline`)."""
        self._probe_base: float | None = None
        """The fastest probe of the session: the network's share, kept across resets (the network does not change)."""
        self._faults: set[str] = set()
        """What is down now ("db", "app")."""
        self._quiet_until = float("-inf")
        self.held_by_fault: str | None = None
        """The fault the last second was not judged for (its event's message), or None."""

    @property
    def active(self) -> dict[str, Finding]:
        """Findings shown now, by id."""
        return {fid: f for fid, f in self._active.items() if fid in self._shown}

    def reset(self) -> None:
        """Forget the past (after a restart or a configuration change the old seconds prove nothing)."""
        self._ticks.clear()
        self._streak.clear()
        self._baseline.clear()

    def note(self, kind: str, t: float, message: str = "", restarted: bool = False) -> None:
        """An event of the session: a change of configuration starts the judging afresh; faults and their ends hold
        it (see the class docstring). The session and an offline replay of its log call it alike."""
        if kind in RESETS:
            self.reset()
            if kind == "applied":
                self._faults.discard("app")  # an app that had exited was started again by the restart
            return
        ended = FAULT_ENDS.get(kind)
        if kind in FAULTS:
            self._faults.add(FAULTS[kind])
        elif ended is not None and ended in self._faults:
            self._faults.discard(ended)
        elif not (kind in BRIEF_FAULTS or (kind == "db-started" and restarted)):
            return
        self._quiet_until = max(self._quiet_until, t + FAULT_HOLD_S)
        self.held_by_fault = message or kind

    def _keep_baseline(self, tick: Tick) -> None:
        """Keep the seconds with the fewest users (the first step's), however long ago, up to BASELINE_S of them."""
        if tick.users <= 0 or tick.latency.p50 is None or tick.rps < THRESHOLDS.min_rps:
            return
        if not self._baseline or tick.users < self._baseline[0].users:
            self._baseline = [tick]
        elif tick.users == self._baseline[0].users and len(self._baseline) < BASELINE_S:
            self._baseline.append(tick)

    def update(self, tick: Tick, config: RunConfig) -> tuple[list[Finding], list[Finding], list[str]]:
        """Add a second; return (findings shown, findings shown from now on, ids no longer shown)."""
        if self._faults or tick.t < self._quiet_until:
            # The fault's seconds prove nothing about the app: judge none of them, and start afresh after it.
            self._ticks.clear()
            self._streak.clear()
            return sorted(self.active.values(), key=order), [], []
        self.held_by_fault = None
        self._ticks.append(tick)
        fastest = probe_floor([tick])
        if fastest is not None:
            self._probe_base = fastest if self._probe_base is None else min(self._probe_base, fastest)
        old = [t for t in self._baseline if t.t < self._ticks[0].t]  # the ones the history forgot
        w = (
            _window(list(self._ticks), config, self._probe_base, old)
            if len(self._ticks) >= THRESHOLDS.window_s
            else None
        )
        found = findings(w) if w is not None else []
        self._keep_baseline(tick)
        for f in found:
            self._seen[f.id] = tick.t
        recent = {fid for fid, at in self._seen.items() if tick.t - at < THRESHOLDS.clear_after_s}
        raw = {f.id: f for f in relate(found, recent | set(self._active), w)}
        for fid, finding in raw.items():
            self._streak[fid] = self._streak.get(fid, 0) + 1
            self._gone.pop(fid, None)
            if fid in self._active or self._streak[fid] >= THRESHOLDS.start_after_s:
                self._active[fid] = finding  # started, or fresh evidence
        for streaking in list(self._streak):
            if streaking not in raw:
                self._streak.pop(streaking)
        for active_id in list(self._active):
            if active_id not in raw:
                self._gone[active_id] = self._gone.get(active_id, 0) + 1
                if self._gone[active_id] >= THRESHOLDS.clear_after_s:
                    del self._active[active_id]
                    self._gone.pop(active_id)
        for f in list(self._active.values()):
            cause = f.consequence_of
            if cause is not None and cause not in self._active and cause in raw:
                self._active[cause] = raw[cause]  # what explains a finding shown now is shown with it
        # A new consequence waits for its cause (still starting, or a blip that may not come back).
        shown = {
            fid
            for fid, f in self._active.items()
            if f.consequence_of is None or f.consequence_of in self._active or fid in self._shown
        }
        started = sorted((self._active[fid] for fid in shown - self._shown), key=order)
        ended = sorted(self._shown - shown, key=lambda fid: RANK.get(fid, len(RANK)))
        self._shown = shown
        return sorted(self.active.values(), key=order), started, ended
