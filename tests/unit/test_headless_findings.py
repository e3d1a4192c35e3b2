"""The headless summary's findings: root causes first, a consequence saying of what, as the diagnosis judged last."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from loadtui.config import RunConfig
from loadtui.diagnosis import evaluate
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
