"""Spreading connections over workers: what to move, when the split is even, each worker's share."""

from __future__ import annotations

import pytest

from loadtui.session.rebalance import balanced, plan, shares, within
from tests.helpers import tick


@pytest.mark.parametrize(
    ("counts", "even"),
    [
        ({1: 20}, True),  # one worker: nothing to balance
        ({1: 10, 2: 10}, True),
        ({1: 11, 2: 9}, True),  # within one connection of even
        ({1: 12, 2: 8}, True),  # 25 % of 10 = 2.5 connections of slack
        ({1: 13, 2: 7}, False),
        ({1: 20, 2: 0}, False),
        ({1: 2, 2: 0}, True),  # tiny counts: one connection of slack at least
        ({1: 3, 2: 0}, False),
        ({1: 7, 2: 7, 3: 6}, True),
        ({1: 0, 2: 0}, True),
    ],
)
def test_balanced(counts: dict[int, int], even: bool) -> None:
    assert balanced(counts) is even


def test_plan_moves_only_the_surplus_of_crowded_workers() -> None:
    assert plan({1: list(range(100, 120)), 2: []}) == list(range(100, 110))
    assert plan({1: [1, 2, 3, 4, 5, 6, 7, 8, 9], 2: [10], 3: [11, 12]}) == [1, 2, 3, 4, 5]  # even = ceil(12/3) = 4
    assert plan({1: [1, 2, 3], 2: [4, 5]}) == []
    assert plan({1: list(range(40))}) == []


def test_shares_use_requests_when_every_worker_reports_them_else_cpu() -> None:
    def second(rps: list[float | None], cpu: list[float]) -> object:
        t = tick(0.0, worker_cpu=cpu)
        import dataclasses

        return dataclasses.replace(
            t, workers=[dataclasses.replace(w, requests_per_s=r) for w, r in zip(t.workers, rps, strict=True)]
        )

    # A blocked worker publishes every other second: its mean over the seconds it reported counts.
    ticks = [second([19.0, None], [3.0, 2.0]), second([None, 21.0], [3.0, 2.0]), second([19.0, 19.0], [3.0, 2.0])]
    assert shares(ticks) == {1000: 0.487, 1001: 0.513}  # type: ignore[arg-type]  # 19 vs (21 + 19) / 2
    never = [second([19.0, None], [75.0, 25.0])] * 3
    assert shares(never) == {1000: 0.75, 1001: 0.25}  # type: ignore[arg-type]
    idle = [second([0.0, 0.0], [0.0, 0.0])]
    assert shares(idle) == {1000: 0.5, 1001: 0.5}  # type: ignore[arg-type]
    assert shares([]) == {}


@pytest.mark.parametrize(
    ("split", "ok"),
    [
        ({1: 0.5, 2: 0.5}, True),
        ({1: 0.25, 2: 0.75}, True),  # the edges: 0.5× and 1.5× of 1/2
        ({1: 0.24, 2: 0.76}, False),
        ({1: 1.0}, True),
        ({1: 0.2, 2: 0.4, 3: 0.4}, True),
        ({1: 0.1, 2: 0.45, 3: 0.45}, False),
    ],
)
def test_within(split: dict[int, float], ok: bool) -> None:
    assert within(split) is ok


def test_spread_moves_the_surplus_until_even_and_stops_when_asked() -> None:
    import threading

    from loadtui.session import rebalance

    # Worker 1 holds all 20 connections; each move lands the moved connections on worker 2 (the idle one).
    state = {1: list(range(20)), 2: []}
    moves: list[list[int]] = []

    def connections() -> dict[int, list[int]]:
        return {pid: list(ports) for pid, ports in state.items()}

    def move(ports: list[int], spread_s: float, fraction: float) -> None:
        moves.append(ports)
        assert spread_s == rebalance.SPREAD_S and fraction == len(ports) / 20
        state[1] = [p for p in state[1] if p not in ports]
        state[2] = state[2] + [100 + p for p in ports]

    quick = threading.Event()
    original = quick.wait
    quick.wait = lambda timeout=None: original(0)  # type: ignore[method-assign]  # no real waiting in a unit test
    done = rebalance.spread(connections, move, users=20, stop=quick)
    assert done is not None
    assert moves == [list(range(10))] and done.moved == 10 and done.rounds == 2
    assert done.connections == {1: 10, 2: 10}
    stopped = threading.Event()
    stopped.set()
    assert rebalance.spread(connections, move, users=20, stop=stopped) is None
