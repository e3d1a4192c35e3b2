"""Sweeps: run a plan of configurations one step at a time, measure each after it settles, and give the verdict.

`--vary KEY=V1,V2,…` (repeatable) makes the steps: the product of the lists, the first `--vary` outermost. A
:class:`PlanRunner` drives a :class:`~loadtui.session.core.Session`: it applies a step (live where the session can,
by restart otherwise), waits until the step has settled (:data:`~loadtui.results.segments.SETTLE_SECONDS`, every user
spawned, the connections spread over the workers), measures `--step` seconds, and goes on. Front ends call
:meth:`PlanRunner.poll` from the thread that owns the session; ticks reach it from the session's tick thread;
:meth:`skip` and :meth:`stop` may come from any thread.

`--vary users=auto` is a capacity search: users rise along :data:`~loadtui.results.verdict.AUTO_USERS` (for each
combination of the other settings) until a step misses an SLO or stops adding throughput. `--vary rate=auto` is the
open model's: the rate doubles along :data:`~loadtui.results.verdict.AUTO_RATES` until a step misses an SLO or the app no
longer finishes the arrivals it is sent; the knee is the highest rate sustained.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from loadtui.config import RunConfig, check_pool_fits
from loadtui.errors import RunFailed, UsageError
from loadtui.model import Tick
from loadtui.results import segments
from loadtui.results.verdict import (
    SAMPLE_APP_ONLY,
    Knee,
    Slo,
    StepResult,
    Vary,
    Verdict,
    choose,
    describe,
    knee,
)
from loadtui.session.core import Session

DEFAULT_STEP_S = 20.0
"""Seconds measured per step (`--step`), after the step has settled."""

RESTART_S = 1.0
"""Seconds a restart of the sample app takes before its users start again (measured on 2 cores: 1-1.5 s)."""
LOADGEN_RESTART_S = 2.0
"""Seconds a new load generator takes to start (another scenario)."""
LIVE_WORKER_S = 1.0
"""Seconds to add or remove one worker live and see it in the figures."""
SPREAD_S = 6.0
"""Seconds spreading the users' connections over the workers takes, with the 3 s the figures then settle."""

SETTLE_TIMEOUT_S = 60
"""A step that has not settled after this many seconds (users never all spawned...) is measured anyway, with a note."""

Phase = Literal["waiting", "settling", "measuring", "done"]


@dataclass(frozen=True)
class Step:
    """One configuration of the plan: the settings it changes, and which capacity search it belongs to."""

    changes: dict[str, Any]
    group: int = 0
    """Steps of one combination of the other settings share a group (a capacity search runs per group)."""

    @property
    def label(self) -> str:
        return describe(self.changes)


@dataclass(frozen=True)
class Plan:
    """The steps of a sweep, in order."""

    varies: tuple[Vary, ...]
    steps: tuple[Step, ...]

    @property
    def search(self) -> bool:
        """True for a capacity search (`users=auto`)."""
        return any(v.auto for v in self.varies)

    @classmethod
    def from_varies(cls, varies: Sequence[Vary]) -> Plan:
        """The product of the lists, the first outermost; an `auto` list always innermost (it is searched)."""
        names = [v.field for v in varies]
        if len(set(names)) != len(names):
            raise UsageError("--vary names a setting twice; give each setting one --vary with all its values")
        fixed = [v for v in varies if not v.auto]
        auto = [v for v in varies if v.auto]
        steps: list[Step] = []
        for group, combo in enumerate(itertools.product(*(v.values for v in fixed))):
            base = dict(zip((v.field for v in fixed), combo, strict=True))
            for inner in itertools.product(*(v.values for v in auto)):
                steps.append(Step({**base, **dict(zip((v.field for v in auto), inner, strict=True))}, group))
        return cls(tuple(varies), tuple(steps))

    def check(self, config: RunConfig, connections_allowed: int | None = None) -> None:
        """Refuse, before anything runs, a step this session cannot apply (UsageError naming the step and the fix)."""
        for v in self.varies:
            if v.field == "workers" and config.host is not None:
                raise UsageError("--vary workers needs an app loadtui starts; with --host its workers are not ours")
            if v.field in SAMPLE_APP_ONLY and not config.sample_app:
                raise UsageError(
                    f"--vary {v.field.replace('_', '-')} changes the sample app's settings; your app reads its own"
                )
            if v.field == "scenario" and config.locustfile is not None:
                raise UsageError("--vary scenario picks the bundled scenarios; drop --locustfile or vary your own")
            if v.field == "users" and (config.open_model or any(o.field == "rate" for o in self.varies)):
                raise UsageError("--vary users with --rate: users and a rate each choose how the load comes; vary one")
        for step in self.steps:
            try:
                new = config.replace(**step.changes)
                if connections_allowed is not None:
                    check_pool_fits(new, connections_allowed)
            except UsageError as exc:
                raise UsageError(f"plan step “{step.label}”: {exc}") from None

    def estimate_s(self, step_s: float, config: RunConfig | None = None) -> float:
        """Seconds the plan takes (a capacity search may stop earlier), from what each step costs before it is
        measured: applying it (a restart, workers added live), then the longest of settling, the users' ramp and the
        spreading of their connections over two or more workers (they overlap). Without `config`, settling only."""
        total = 0.0
        now = config
        for step in self.steps:
            total += step_s
            if now is None:
                total += segments.SETTLE_SECONDS
                continue
            new = now.replace(**step.changes)
            apply = ramp = spread = 0.0
            if new.needs_restart(now):
                apply, ramp = RESTART_S, new.users / new.spawn_rate  # the users come back at the spawn rate
            elif new.scenario != now.scenario:
                apply, ramp = LOADGEN_RESTART_S, new.users / new.spawn_rate  # a new load generator starts them anew
            else:
                apply = LIVE_WORKER_S * abs(new.workers - now.workers)
                ramp = max(0, new.users - now.users) / new.spawn_rate  # fewer users stop at once
            if new.workers > 1 and new.rebalance and (new.needs_restart(now) or new.workers != now.workers):
                spread = SPREAD_S
            if new.open_model:
                ramp = 0.0  # arrivals start at their rate at once
            total += apply + max(segments.SETTLE_SECONDS, ramp, spread)
            now = new
        return total


@dataclass(frozen=True)
class Row:
    """A step as the plan panel shows it."""

    label: str
    state: str
    """`done`, `now`, `next`, `skipped`, `failed`, `dropped` (a capacity search stopped before it)."""
    result: StepResult | None = None
    slo_met: bool | None = None


@dataclass(frozen=True)
class PlanView:
    """A consistent snapshot for a front end."""

    rows: list[Row]
    phase: Phase
    index: int
    remaining_s: float | None
    """Seconds left in the current step (settling counts as its measured time, which has not begun)."""
    verdict: Verdict | None
    stopped: str | None
    knees: dict[int, Knee] = field(default_factory=dict)


class PlanRunner:
    """Runs a :class:`Plan` on a live session; see the module docstring for the threads."""

    def __init__(
        self,
        plan: Plan,
        slos: Sequence[Slo] = (),
        step_s: float = DEFAULT_STEP_S,
        settle_timeout: int = SETTLE_TIMEOUT_S,
        on_done: Callable[[Verdict], object] | None = None,
    ) -> None:
        self.plan = plan
        self.slos = tuple(slos)
        self.step_s = step_s
        self.settle_timeout = settle_timeout
        self._on_done = on_done
        self._lock = threading.Lock()
        self._steps: list[Step] = list(plan.steps)
        self._dropped: list[Step] = []
        self.index = 0
        self.phase: Phase = "waiting"
        self._segment: int | None = None
        self._settle_ticks = 0
        self._measured: list[Tick] = []
        self._note = ""
        self._step_started = 0.0
        self._measure_started = 0.0
        self.results: list[StepResult] = []
        self.overheads: list[float] = []
        """Seconds each step spent outside measurement: applying, restarting, settling (the sweep's cost)."""
        self.knees: dict[int, Knee] = {}
        self.verdict: Verdict | None = None
        self.stopped: str | None = None
        self._session: Session | None = None

    # -- driving ---------------------------------------------------------------------------------------------------

    def attach(self, session: Session) -> None:
        """Start following `session`'s ticks; check every step against its database limits."""
        allowed = session.children.limits.for_ordinary_roles if session.children.limits is not None else None
        self.plan.check(session.config, allowed)
        self._session = session
        session.subscribe(on_tick=self._on_tick)
        session.event(
            "plan",
            f"plan of {len(self._steps)} step(s), {self.step_s:g} s measured each: "
            + " | ".join(s.label for s in self._steps),
            steps=[s.changes for s in self._steps],
            step_s=self.step_s,
            slos=[str(s) for s in self.slos],
        )

    @property
    def finished(self) -> bool:
        return self.phase == "done"

    @property
    def attached(self) -> bool:
        """True once :meth:`attach` accepted the session."""
        return self._session is not None

    def poll(self, session: Session, progress: Callable[[str], object] | None = None) -> None:
        """Apply the next step when the current one is measured; give the verdict after the last. Control thread."""
        with self._lock:
            if self.phase != "waiting" or self._session is None:  # not attached (refused): nothing to run
                return
            if self.index >= len(self._steps) or self.stopped is not None:
                step = None
            else:
                step = self._steps[self.index]
                self._step_started = time.monotonic()
        if step is None:
            self._finish(session)
            return
        session.event("plan", f"step {self.index + 1}/{len(self._steps)}: {step.label}", step=self.index)
        try:
            session.changes.change(progress=progress, **step.changes)
        except (RunFailed, UsageError) as exc:
            with self._lock:
                self._record(session, step, [], f"failed: {exc}")
            return
        with self._lock:
            self._segment = session.ledger.segment
            self._settle_ticks = 0
            self._measured = []
            self._note = ""
            self.phase = "settling"

    def skip(self) -> None:
        """Cut the current step short: measured seconds so far are kept, with a note."""
        with self._lock:
            if self.phase in ("settling", "measuring") and self._session is not None:
                step = self._steps[self.index]
                note = f"skipped after {len(self._measured)} s" if self._measured else "skipped"
                self._record(self._session, step, self._measured, note)

    def stop(self, reason: str) -> None:
        """End the plan where it is (the user took over, or quit); the verdict covers the steps measured so far."""
        with self._lock:
            if self.phase == "done":
                return
            self.stopped = reason
            self.phase = "waiting" if self._session is not None else "done"
        if self._session is not None:
            self._finish(self._session)

    def _on_tick(self, tick: Tick) -> None:
        with self._lock:
            session = self._session
            if session is None or tick.segment != self._segment:
                return
            if self.phase == "settling":
                self._settle_ticks += 1
                ready = (
                    self._settle_ticks >= segments.SETTLE_SECONDS
                    and (session.config.open_model or tick.users >= session.config.users)
                    and not session.shaper.rebalancing
                )
                if ready or self._settle_ticks >= self.settle_timeout:
                    if not ready:
                        self._note = f"did not settle in {self.settle_timeout} s"
                    self.phase = "measuring"
                    self._measure_started = time.monotonic()
            elif self.phase == "measuring":
                self._measured.append(tick)
                if len(self._measured) >= self.step_s:
                    self._record(session, self._steps[self.index], self._measured, self._note)

    def _record(self, session: Session, step: Step, measured: list[Tick], note: str) -> None:
        """Close the current step (lock held)."""
        segment = segments.summarize(
            self._segment if self._segment is not None else session.ledger.segment, measured, session.config, settle=0
        )
        result = StepResult(dict(step.changes), segment, note)
        self.results.append(result)
        started = self._measure_started if measured else time.monotonic()
        self.overheads.append(round(max(0.0, started - self._step_started), 2))
        if self.plan.search:
            group = [r for r, s in zip(self.results, self._steps, strict=False) if s.group == step.group]
            found = knee([r for r in group if not r.note.startswith(("failed", "skipped"))], self.slos)
            self.knees[step.group] = found
            if found.stopped:
                rest = [s for s in self._steps[self.index + 1 :] if s.group == step.group]
                self._dropped += rest
                self._steps = [s for s in self._steps if s not in rest]
        self.index += 1
        self.phase = "waiting"
        self._segment = None

    def _finish(self, session: Session) -> None:
        with self._lock:
            if self.phase == "done":
                return
            self.phase = "done"
            verdict = choose(self.results, self.slos)
            if self.plan.search and len(self.knees) == 1:
                found = next(iter(self.knees.values()))
                verdict = Verdict(
                    verdict.segment,
                    verdict.config,
                    verdict.rps,
                    verdict.p95,
                    f"knee: {found.label} ({found.reason}); " + verdict.why,
                    knee=found.value,
                    slos=verdict.slos,
                )
            self.verdict = verdict
        stopped = f" (plan stopped: {self.stopped})" if self.stopped else ""
        session.sweep_ended(verdict, list(self.results), f"{verdict.why}{stopped}")
        if self._on_done is not None:
            self._on_done(verdict)

    # -- reading ---------------------------------------------------------------------------------------------------

    def view(self) -> PlanView:
        """The plan as a front end shows it."""
        with self._lock:
            rows: list[Row] = []
            for i, step in enumerate(self._steps):
                if i < len(self.results):
                    r = self.results[i]
                    state = r.note.split(":")[0].split(" ")[0] if r.note.startswith(("failed", "skipped")) else "done"
                    met = all(s.met(r.segment) for s in self.slos) if self.slos and state == "done" else None
                    rows.append(Row(step.label, state, r, met))
                elif i == self.index and self.phase in ("settling", "measuring"):
                    rows.append(Row(step.label, self.phase))
                else:
                    rows.append(Row(step.label, "stopped" if self.phase == "done" else "next"))
            rows += [Row(s.label, "dropped") for s in self._dropped]
            remaining: float | None = None
            if self.phase == "measuring":
                remaining = max(0.0, self.step_s - len(self._measured))
            elif self.phase == "settling":
                remaining = self.step_s
            return PlanView(rows, self.phase, self.index, remaining, self.verdict, self.stopped, dict(self.knees))
