"""Configuration segments: settling seconds excluded, best segment chosen."""

from __future__ import annotations

from typing import Any

import pytest

from loadtui.config import RunConfig
from loadtui.results.segments import best, split
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


def test_steady_figures_are_means_and_medians_of_the_steady_seconds_only() -> None:
    from loadtui.results.segments import summarize

    # Settling seconds (the first 3) have wild values that must not count.
    p50s = [999.0, 999.0, 999.0, 10.0, 30.0, 20.0, 40.0]
    ticks = [tick(float(i), rps=1.0 if i < 3 else 100.0 + i, p50=p50s[i], p95=p50s[i] * 2, fail_rps=0.5 * (i >= 3),
                  worker_cpu=[10.0 * (i >= 3), 30.0], loadgen_cpu=float(i), db_conns=i, pool_waiting=i,
                  segment=4) for i in range(7)]  # fmt: skip
    seg = summarize(4, ticks, RunConfig(workers=2, users=9))
    assert (seg.index, seg.seconds, seg.steady_seconds, seg.start_t, seg.end_t) == (4, 7, 4, 0.0, 6.0)
    assert seg.rps == 104.5  # mean of 103..106
    assert seg.fail_rps == 0.5
    assert seg.p50 == 25.0  # median of 10, 30, 20, 40 (a mean would give 25 too: see p95 below)
    assert seg.p95 == 50.0
    assert seg.app_cpu_percent == 40.0 and seg.cpu_per_worker == 20.0
    assert seg.loadgen_cpu_percent == 4.5 and seg.db_connections == 4.5 and seg.pool_waiting == 9.0
    assert seg.label == "crud · 9 users · 2w · pool 2-10" and seg.config["users"] == 9
    skewed = summarize(0, [tick(float(i), p50=v) for i, v in enumerate([1.0] * 3 + [10.0, 11.0, 90.0])], None)
    assert skewed.p50 == 11.0  # the median, not the mean (37)
    assert skewed.label == "segment 0" and skewed.config == {}


def test_figures_round_to_two_places_and_missing_values_are_none() -> None:
    from loadtui.results.segments import summarize

    ticks = [tick(float(i), rps=1.0 / 3 if i >= 3 else 0.0, p50=None, p95=None) for i in range(6)]
    seg = summarize(0, ticks, None)
    assert seg.rps == 0.33 and seg.p50 is None and seg.p95 is None
    empty = summarize(1, [], None)
    assert (empty.seconds, empty.steady_seconds, empty.rps, empty.start_t) == (0, 0, None, 0.0)
    short = summarize(2, [tick(1.0), tick(2.0), tick(3.0)], None)
    assert short.steady_seconds == 0 and short.rps is None  # all settling: nothing steady to report


def test_a_segment_lists_each_finding_once_in_order() -> None:
    from loadtui.model import Finding
    from loadtui.results.segments import summarize

    a = Finding("queueing", "warning", "t", "e")
    b = Finding("db-bound", "warning", "t", "e")
    ticks = [tick(0.0, findings=[a]), tick(1.0, findings=[a, b]), tick(2.0, findings=[b, a])]
    assert summarize(0, ticks, None).findings == ["queueing", "db-bound"]


@pytest.mark.parametrize(
    ("config", "text"),
    [
        (RunConfig(), "crud · 50 users · 1w · pool 2-10"),
        (RunConfig(db_mode="per-request", access_log=True, workers=4, users=3, scenario="ping"),
         "ping · 3 users · 4w · conn/request +log"),
        # Another app's pool is its own: the sample app's settings would mislead
        (RunConfig(app="uvicorn a:app --port {port}", locustfile="l.py", pool_max=3), "custom · 50 users · 1w · your app"),
        (RunConfig(host="http://10.0.0.5:8000", locustfile="l.py"), "custom · 50 users · 1w · at http://10.0.0.5:8000"),
    ],
)  # fmt: skip
def test_labels(config: RunConfig, text: str) -> None:
    from loadtui.results.segments import label

    assert label(config) == text


def test_label_of_a_custom_locustfile(tmp_path: Any) -> None:
    from loadtui.results.segments import label

    path = tmp_path / "mine.py"
    path.write_text("")
    assert label(RunConfig(locustfile=str(path), scenario="MyUser")).startswith("custom · 50 users")


def test_best_breaks_ties_by_lower_p95_and_ignores_empty_segments() -> None:
    base = [tick(float(i), rps=100.0, p95=50.0, segment=0) for i in range(5)]
    base += [tick(float(5 + i), rps=100.0, p95=20.0, segment=1) for i in range(5)]
    base += [tick(float(10 + i), rps=0.0, p50=None, p95=None, segment=2) for i in range(2)]  # all settling
    segs = split(base, {})
    assert segs[2].rps is None
    chosen = best(segs)
    assert chosen is not None and chosen.index == 1
    assert best([segs[2]]) is None
    failing = [tick(float(i), rps=900.0, fail_rps=1.0, segment=0) for i in range(5)]
    failing += [tick(float(5 + i), rps=500.0, fail_rps=0.2, segment=1) for i in range(5)]
    chosen = best(split(failing, {}))
    assert chosen is not None and chosen.index == 0  # both fail: the most requests/s wins


def test_p99_and_medians_to_two_places() -> None:
    from loadtui.results.segments import summarize

    ticks = [tick(float(i), p50=1.0) for i in range(3)]
    ticks += [tick(float(3 + i), p50=v, p95=v * 2) for i, v in enumerate([1.111, 1.111, 9.0])]
    seg = summarize(0, ticks, None)
    assert seg.p50 == 1.11  # the median, to 2 places
    assert seg.p99 == 2.22  # the helper's p99 is its p95


def test_a_mark_at_the_exact_end_of_a_segments_last_second_belongs_to_it() -> None:
    from loadtui.model import Event

    ticks = [tick(float(i), segment=0) for i in range(1, 4)] + [tick(float(i), segment=1) for i in range(4, 7)]
    segs = split(ticks, {}, events=[Event(3.0, "mark", "m", {"note": "at three"})])
    assert segs[0].marks == ["3 s: at three"] and segs[1].marks == []
    unnamed = split(ticks, {}, events=[Event(5.0, "mark", "just a mark", {})])
    assert unnamed[1].marks == ["5 s: just a mark"]


def test_seconds_without_workers_or_figures_do_not_count_and_times_are_the_ticks() -> None:
    import dataclasses

    from loadtui.results.segments import summarize

    ticks = [tick(float(10 + i)) for i in range(6)]
    # A restart: two seconds without workers, load generator, database or pools.
    ticks[4] = dataclasses.replace(ticks[4], workers=[], loadgen=None, db=None, pools=[])
    ticks[5] = dataclasses.replace(ticks[5], workers=[], loadgen=None, db=None, pools=[])
    seg = summarize(0, ticks, None)
    assert (seg.start_t, seg.end_t) == (10.0, 15.0)
    assert seg.app_cpu_percent == 30.0 and seg.cpu_per_worker == 30.0 and seg.loadgen_cpu_percent == 30.0
    assert seg.db_connections == 10.0 and seg.pool_waiting == 0.0


def test_best_prefers_any_throughput_over_none() -> None:
    idle = [tick(float(i), rps=0.0, p95=None, segment=0) for i in range(5)]
    busy = [tick(float(5 + i), rps=0.5, p95=900.0, segment=1) for i in range(5)]
    chosen = best(split(idle + busy, {}))
    assert chosen is not None and chosen.index == 1


def test_seconds_without_users_lend_no_findings_to_their_segment() -> None:
    from loadtui.model import Finding
    from loadtui.results.segments import summarize

    held = Finding("queueing", "warning", "t", "e", "a")
    ticks = [tick(float(i), users=0, rps=0.0, findings=[held]) for i in range(6)]
    assert summarize(0, ticks, RunConfig(users=0)).findings == []


def test_an_open_model_segment_keeps_the_rate_asked_finished_dropped_in_flight_and_service_time() -> None:
    from dataclasses import replace

    from loadtui.model import Latency, OpenLoad
    from loadtui.results.segments import summarize

    config = RunConfig(rate=100.0, users=50)
    seconds = [
        replace(tick(t, users=0, segment=4), open=OpenLoad(100.0, 90.0 + t, 100.0, t, int(t) * 2, Latency(p95=5.0 + t)))
        for t in range(6)
    ]  # users 0: arrivals need none, so the steady seconds start after settling alone
    seg = summarize(4, seconds, config)
    assert (seg.index, seg.seconds, seg.steady_seconds, seg.start_t, seg.end_t) == (4, 6, 3, 0.0, 5.0)
    assert (seg.target_rate, seg.achieved_rate, seg.dropped_rps) == (100.0, 94.0, 4.0)
    assert (seg.in_flight, seg.service_p95) == (8.0, 9.0)
    closed = summarize(1, [tick(t) for t in range(5)], RunConfig())
    assert (closed.target_rate, closed.achieved_rate, closed.dropped_rps, closed.in_flight, closed.service_p95) == (
        None, None, None, None, None,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("users", "settle", "steady"),
    [
        ([10, 10, 10, 10, 10, 10], 3, 3),  # spawned from the first second: settling alone
        ([2, 4, 6, 8, 10, 10, 10], 3, 2),  # all spawned in the fifth second: steady from the sixth
        ([2, 10, 10, 10, 10], 0, 3),  # spawned in the second: steady from the third even without settling
        ([2, 4, 6, 8, 9, 9], 3, 3),  # never all spawned: after settling only
        ([12, 12, 12, 12], 3, 1),  # more users than asked count as spawned
        ([10, 10, 10], 3, 0),  # no second after settling
    ],
)
def test_the_steady_seconds_start_after_settling_and_after_the_last_user_spawned(
    users: list[int], settle: int, steady: int
) -> None:
    from loadtui.results.segments import summarize

    seg = summarize(1, [tick(t, users=u) for t, u in enumerate(users)], RunConfig(users=10), settle=settle)
    assert seg.steady_seconds == steady


def test_an_empty_segment_has_no_figures_and_times_at_zero() -> None:
    from loadtui.results.segments import summarize

    seg = summarize(2, [], None)
    assert (seg.label, seg.start_t, seg.end_t, seg.seconds, seg.rps, seg.config) == ("segment 2", 0.0, 0.0, 0, None, {})


def test_a_paused_second_does_not_hide_the_findings_after_it() -> None:
    from loadtui.model import Finding
    from loadtui.results.segments import summarize

    old = [Finding(id="queueing", severity="warning", title="", evidence="")]
    new = [Finding(id="backlog", severity="warning", title="", evidence="")]
    seconds = [tick(0, users=0, findings=old), tick(1, users=10, findings=new)]
    assert summarize(1, seconds, RunConfig(users=10)).findings == ["backlog"]
