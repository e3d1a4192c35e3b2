"""The headless summary's findings: root causes first, a consequence saying of what, as the diagnosis judged last."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from loadtui.config import RunConfig
from loadtui.diagnose import evaluate
from loadtui.headless import _findings
from loadtui.model import Event
from tests.helpers import tick


def test_a_consequence_that_started_first_is_listed_after_its_cause() -> None:
    ticks = [tick(float(i), worker_cpu=[100.0], loadgen_cpu=37.0, pool_waiting=17) for i in range(5)]
    judged = evaluate(ticks, RunConfig())
    last = tick(5.0, findings=judged)

    def started(fid: str, t: float) -> Event:
        data: dict[str, Any] = {"id": fid, "severity": "warning", "evidence": f"{fid} numbers", "advice": "plain"}
        return Event(t=t, kind="finding-started", message=f"{fid} title", data=data)

    # pool-exhausted started a second before the pinned worker was judged: it is still its consequence.
    session: Any = SimpleNamespace(
        ticks=[last], events=[started("pool-exhausted", 3.0), started("too-few-workers", 4.0)]
    )
    found = _findings(session)
    assert [title for _, title, _ in found] == [
        "too-few-workers title",
        "pool-exhausted title (a consequence of the workers' full cores (too-few-workers))",
    ]


def test_a_consequence_of_a_cause_the_run_never_named_reads_as_a_finding_of_its_own() -> None:
    """The summary names a cause only if the run named it (a consequence judged in the last second of a cause that
    never started says nothing of it)."""
    ticks = [tick(float(i), worker_cpu=[100.0], loadgen_cpu=37.0, pool_waiting=17) for i in range(5)]
    last = tick(5.0, findings=evaluate(ticks, RunConfig()))
    data: dict[str, Any] = {"id": "pool-exhausted", "severity": "warning", "evidence": "numbers", "advice": "plain"}
    session: Any = SimpleNamespace(ticks=[last], events=[Event(3.0, "finding-started", "pool title", data)])
    assert [title for _, title, _ in _findings(session)] == ["pool title"]
