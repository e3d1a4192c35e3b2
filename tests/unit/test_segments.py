"""Configuration segments: settling seconds excluded, best segment chosen."""

from __future__ import annotations

from loadtui.config import RunConfig
from loadtui.segments import best, split
from tests.helpers import tick


def test_segments_skip_settling_seconds() -> None:
    ticks = [tick(float(i), rps=10.0 if i < 3 else 100.0, segment=0) for i in range(10)]
    ticks += [tick(float(10 + i), rps=5.0 if i < 3 else 300.0, segment=1, worker_cpu=[50.0, 50.0]) for i in range(10)]
    segs = split(ticks, {0: RunConfig(workers=1), 1: RunConfig(workers=2)})
    assert [s.rps for s in segs] == [100.0, 300.0]
    assert segs[0].steady_seconds == 7 and segs[0].seconds == 10
    assert segs[1].cpu_per_worker == 50.0 and segs[1].app_cpu_percent == 100.0
    assert "2w" in segs[1].label
    chosen = best(segs)
    assert chosen is not None and chosen.index == 1


def test_best_prefers_no_failures() -> None:
    ticks = [tick(float(i), rps=500.0, fail_rps=50.0, segment=0) for i in range(6)]
    ticks += [tick(float(6 + i), rps=200.0, segment=1) for i in range(6)]
    chosen = best(split(ticks, {}))
    assert chosen is not None and chosen.index == 1


def test_marks_are_kept_with_their_segment_and_do_not_split() -> None:
    from loadtui.model import Event

    ticks = [tick(float(i), segment=0) for i in range(1, 6)] + [tick(float(i), segment=1) for i in range(6, 11)]
    marks = [Event(2.5, "mark", "a", {"note": "first"}), Event(5.4, "mark", "b", {"note": "between"}),
             Event(12.0, "mark", "c", {"note": "after the last second"})]  # fmt: skip
    segs = split(ticks, {}, events=marks)
    assert len(segs) == 2
    assert segs[0].marks == ["2 s: first"]
    assert segs[1].marks == ["5 s: between", "12 s: after the last second"]
