"""What a session adds up to (the session log's last line): totals, the segments, and a sweep's verdict or the SLO
checks. Apart from :mod:`.segments` so that the segments need nothing of the verdict (which judges segments)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from loadtui.results.segments import Segment
from loadtui.results.verdict import SloCheck, StepResult, Verdict


@dataclass(frozen=True)
class Summary:
    """What a session adds up to: totals and one row per configuration segment (the log's last line)."""

    t: float
    seconds: int
    requests: int
    failures: int
    segments: list[Segment]
    best_segment: int | None
    """The index of the segment `best` picked, if any."""
    findings: list[str]
    """Finding ids in the order they first started."""
    failed: str | None
    """Why the run failed, or None."""
    verdict: Verdict | None = None
    """A sweep's verdict (plan.py): which configuration won and why."""
    plan: list[StepResult] = field(default_factory=list)
    """A sweep's steps with the figures of their measured seconds."""
    slo_checks: list[SloCheck] = field(default_factory=list)
    """`--slo` checked against every segment of a run without a sweep."""
    stats_rejected: int = 0
    """Workers' stats records dropped for their shape (each costs one second of one worker's figures)."""
    remote_dropped: int = 0
    """`--stats-listen` datagrams dropped: unsigned, wrongly signed or malformed."""

    @property
    def slos_met(self) -> bool:
        """False when an SLO was missed: by every step of a sweep (no verdict), or by a segment of a plain run."""
        if self.verdict is not None and self.verdict.slos:
            return self.verdict.segment is not None
        return all(c.met for c in self.slo_checks)

    def to_dict(self) -> dict[str, Any]:
        """For the summary line of the session log."""
        return asdict(self)
