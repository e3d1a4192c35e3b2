"""A session's results as they accrue: which configuration each segment ran, the totals, and the summary built from
the session log (streamed, so memory stays flat however long the session)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from loadtui.config import RunConfig
from loadtui.errors import UsageError
from loadtui.model import Event, Tick
from loadtui.results import segments, verdict
from loadtui.results.recorder import read_ticks
from loadtui.results.segments import Segment
from loadtui.results.summary import Summary


class Ledger:
    """Segments, their configurations and the totals of every second."""

    def __init__(self, config: RunConfig) -> None:
        self.segment = 0
        """The index of the configuration segment running now."""
        self.configs: dict[int, RunConfig] = {0: config}
        self.seconds = 0
        """Seconds measured so far."""
        self.requests = 0.0
        self.failures = 0.0
        self.verdict: verdict.Verdict | None = None
        """A sweep's verdict, set when its plan ends."""
        self.plan_results: list[verdict.StepResult] = []

    def new_segment(self, config: RunConfig) -> int:
        """A change: the seconds from now on belong to a new segment running `config`."""
        self.segment += 1
        self.configs[self.segment] = config
        return self.segment

    def count(self, tick: Tick) -> None:
        """One more second."""
        self.seconds += 1
        self.requests += tick.rps
        self.failures += tick.fail_rps

    def segments(self, log: Path | None, recent: Sequence[Tick], events: Sequence[Event]) -> list[Segment]:
        """The segments so far: from the log (`log`, which holds every second) when the recent seconds in memory
        are not all of them, else from those."""
        ticks: Iterable[Tick] = recent
        if log is not None and self.seconds > len(recent):
            try:
                return segments.split(read_ticks(log), self.configs, events=events)
            except UsageError:
                pass  # the file went away: summarize the recent seconds
        return segments.split(ticks, self.configs, events=events)

    def summary(
        self,
        t: float,
        segs: list[Segment],
        events: Sequence[Event],
        *,
        failed: str | None,
        slos: Sequence[verdict.Slo],
        stats_rejected: int,
        remote_dropped: int,
    ) -> Summary:
        """Totals and one row per configuration segment (the log's last line)."""
        best = segments.best(segs)
        return Summary(
            t=round(t, 3),
            seconds=self.seconds,
            requests=round(self.requests),
            failures=round(self.failures),
            segments=segs,
            best_segment=best.index if best else None,
            findings=list(dict.fromkeys(str(e.data.get("id")) for e in events if e.kind == "finding-started")),
            failed=failed,
            verdict=self.verdict,
            plan=list(self.plan_results),
            slo_checks=verdict.check(segs, slos) if slos and self.verdict is None else [],
            stats_rejected=stats_rejected,
            remote_dropped=remote_dropped,
        )
