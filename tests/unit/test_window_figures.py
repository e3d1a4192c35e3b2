"""The window's figures, by hand: Little's law on the database's connections, the workers that carry the load, who
used the cores, the probe's wait and the server's fixed delay, each at its edges.

The rules' tests (test_diagnosis*.py) say which finding a situation gives; these pin the numbers the findings quote,
so a figure off by a unit, a factor or a comparison fails here first.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from loadtui.config import RunConfig
from loadtui.diagnose.window import DbTime, Window
from loadtui.model import DbStats, Tick
from tests.helpers import tick


def window(*ticks: Tick, probe_base: float = 0.0) -> Window:
    return Window(list(ticks), RunConfig(), probe_base=probe_base)


def with_db(t: Tick, connections: int, **by_state: int) -> Tick:
    db = DbStats(connections=connections, max_connections=100, by_state={k.replace("_", " "): v for k, v in
                 by_state.items()}, by_application={}, reserved=3)  # fmt: skip
    return dataclasses.replace(t, db=db)


def test_little_s_law_on_the_connections() -> None:
    d = DbTime(connections=8.0, busy=2.0, active=0.5, rps=100.0, p50=40.0)
    assert (d.busy_share, d.hold_ms, d.query_ms, d.hold_share) == (0.25, 20.0, 5.0, 0.5)
    assert (d.all_busy, d.loaded_share, d.pinned) == (False, 1.0, None)
    assert d.whose == "the app's 8 connections"
    assert DbTime(connections=0.0, busy=0.0, active=0.0, rps=1.0, p50=0.0).busy_share == 0.0
    assert DbTime(connections=4.0, busy=2.0, active=0.0, rps=100.0, p50=0.0).hold_share == 0.0
    assert DbTime(4.0, 2.0, 0.0, 100.0, 10.0, loaded_share=0.5).whose == (
        "the 4 connections of the workers carrying the load (50% of them; the others hold almost none of the users' "
        "connections)"
    )


def test_the_database_over_a_window_counts_the_connections_a_request_holds() -> None:
    seconds = [
        with_db(tick(1, rps=100.0, p50=40.0), 10, active=2, idle_in_transaction=1, idle=7),
        with_db(tick(2, rps=100.0, p50=40.0), 10, active=4, idle=6),
    ]
    d = window(*seconds).database
    assert d is not None
    assert (d.connections, d.busy, d.active, d.rps, d.p50) == (10.0, 3.5, 3.0, 100.0, 40.0)
    assert (d.hold_ms, d.all_busy, d.pinned) == (35.0, False, None)


def test_connections_every_one_busy_and_a_cap_pinned() -> None:
    full = [with_db(tick(s, rps=50.0), 4, active=4) for s in range(5)]
    d = window(*full).database
    assert d is not None and d.all_busy and d.pinned == 4
    mostly = [with_db(tick(s, rps=50.0), 8, active=3 if s < 4 else 2, idle=5) for s in range(5)]
    d = window(*mostly).database
    assert d is not None and not d.all_busy and d.pinned == 3  # 3 in four seconds of five: 80%
    seldom = [with_db(tick(s, rps=50.0), 8, active=3 if s < 3 else 2, idle=5) for s in range(5)]
    assert window(*seldom).database.pinned is None  # type: ignore[union-attr]
    idle = [with_db(tick(s, rps=50.0), 8, idle=8) for s in range(5)]
    assert window(*idle).database.pinned is None  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("figures", "has_database"),
    [({"rps": 1.0}, True), ({"rps": 0.9}, False), ({"p50": None}, False), ({"db": False}, False)],
)
def test_the_database_is_judged_from_one_request_a_second_with_latencies(
    figures: dict[str, Any], has_database: bool
) -> None:
    assert (window(tick(1, **figures)).database is not None) is has_database


def test_only_the_workers_that_carry_the_load_count_their_connections() -> None:
    # Two workers at 80% and 20% of a core, one at 10%: a quarter of the busiest (20%) still carries load.
    uneven = with_db(tick(1, worker_cpu=(80.0, 20.0, 10.0), rps=90.0), 12, active=3, idle=9)
    w = window(uneven)
    assert w.loaded_workers_share == pytest.approx(2 / 3)
    d = w.database
    assert d is not None and d.connections == pytest.approx(8.0) and d.loaded_share == pytest.approx(2 / 3)
    assert window(tick(1, worker_cpu=(0.0, 0.0))).loaded_workers_share == 1.0
    assert window(tick(1, worker_cpu=())).loaded_workers_share == 1.0
    full = with_db(tick(1, worker_cpu=(50.0, 50.0), rps=90.0), 4, active=4)
    assert window(full).database.all_busy  # type: ignore[union-attr]


def test_who_used_the_cores() -> None:
    t = dataclasses.replace(tick(1, worker_cpu=(60.0, 40.0), loadgen_cpu=30.0, cpu_count=4), machine_cpu_percent=50.0)
    used = window(t).cores_used
    assert used is not None
    assert (used.total, used.cores, used.app, used.loadgen, round(used.other, 9)) == (50.0, 4, 1.0, 0.3, 0.7)
    busy_elsewhere = dataclasses.replace(t, machine_cpu_percent=20.0)
    assert window(busy_elsewhere).cores_used.other == 0.0  # type: ignore[union-attr]
    assert window(tick(1)).cores_used is None  # no machine figure


def test_the_users_wait_share_and_a_steady_count() -> None:
    w = window(tick(1, users=10, rps=100.0, p50=50.0), tick(2, users=10, rps=100.0, p50=50.0))
    assert w.users_waiting_share == 0.5 and w.steady_users
    assert window(tick(1, users=1, rps=100.0, p50=50.0)).users_waiting_share == 1.0  # capped
    assert window(tick(1, users=0)).users_waiting_share is None
    assert window(tick(1, users=10, p50=None)).users_waiting_share is None
    assert not window(tick(1, users=10), tick(2, users=11)).steady_users


def test_means_and_the_cpu_per_worker() -> None:
    w = window(
        tick(1, rps=100.0, p95=20.0, worker_cpu=(10.0, 30.0)), tick(2, rps=200.0, p95=40.0, worker_cpu=(30.0, 50.0))
    )
    assert (w.rps, w.p95, w.app_cpu_mean) == (150.0, 30.0, 30.0)
    assert w.worker_cpu() == {1000: 20.0, 1001: 40.0}
    assert window(tick(1, rps=0.0)).rps == 0.0
    assert window(tick(1, worker_cpu=())).app_cpu_mean == 0.0


@pytest.mark.parametrize(
    ("kept", "fresh", "delay"),
    [
        (44.0, 2.0, 42.0),  # the Nagle + delayed-ACK signature: 40 ms on kept-alive connections only
        (36.0, 9.0, 27.0),  # at the edges: 36 ms kept, fresh a quarter of it
        (35.9, 2.0, 0.0),  # too fast to be the delayed ACK
        (44.0, 11.5, 0.0),  # fresh connections slow too: the app, not the delay
        (None, 2.0, 0.0),
    ],
)
def test_the_fixed_delay_on_kept_alive_connections(kept: float | None, fresh: float, delay: float) -> None:
    assert window(tick(1, probe_ms=fresh, kept_ms=kept)).fixed_delay_ms == pytest.approx(delay)


def test_the_probe_wait_is_beyond_the_network_s_share() -> None:
    assert window(tick(1, probe_ms=12.0), probe_base=2.0).probe_wait == 10.0
    assert window(tick(1, probe_ms=1.0), probe_base=2.0).probe_wait == 0.0
    assert window(tick(1)).probe_wait is None
    assert window(tick(1)).probe_base == 0.0 and window(tick(1)).memo == {}
