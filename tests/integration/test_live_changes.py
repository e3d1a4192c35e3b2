"""Live changes take effect at once on the real stack: the load follows + and −, and a restart by a."""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import pytest

from loadtui.config import RunConfig
from loadtui.model import Tick
from loadtui.session.core import Session
from tests.helpers import wait_for

pytestmark = pytest.mark.integration


def mean_rps(ticks: list[Tick]) -> float:
    return statistics.fmean(t.rps for t in ticks)


def request_shares(ticks: list[Tick]) -> dict[int, float]:
    """Each worker's share of the requests over `ticks`, from what the workers report (the helper)."""
    done: dict[int, float] = {}
    for t in ticks:
        for w in t.workers:
            done[w.pid] = done.get(w.pid, 0.0) + (w.requests_per_s or 0.0)
    total = sum(done.values()) or 1.0
    return {pid: n / total for pid, n in done.items()}


def seconds_after(session: Session, count: int) -> list[Tick]:
    start = session.tick_count
    wait_for(lambda: session.tick_count >= start + count, timeout=count * 3 + 10, what=f"{count} seconds")
    return list(session.ticks)[-count:]


def test_the_load_follows_plus_minus_and_a_restart(tmp_path: Path) -> None:
    config = RunConfig(scenario="blocking", workers=1, users=20, spawn_rate=100, sleep_ms=50,
                       record=str(tmp_path / "s.jsonl"))  # fmt: skip
    session = Session(config)
    try:
        session.open()
        wait_for(lambda: session.ticks and session.ticks[-1].rps > 0, timeout=30, what="load")
        one_worker = mean_rps(seconds_after(session, 4))

        # + : within 10 s the throughput follows the second worker, and both serve their share.
        session.changes.set_workers(2)
        added_at = session.elapsed
        wait_for(lambda: session.ticks[-1].rps >= 1.7 * one_worker, timeout=10, what="throughput ≥ 1.7× of one worker")
        assert session.elapsed - added_at <= 10
        shares = request_shares(seconds_after(session, 4))
        assert len(shares) == 2 and min(shares.values()) >= 0.3, shares
        rebalanced = wait_for(lambda: [e for e in session.events if e.kind == "rebalanced"], timeout=15,
                              what="the rebalanced event")  # fmt: skip
        assert rebalanced[-1].data["even"], rebalanced

        # − : not one request fails while the worker goes.
        failed_before = sum(t.fail_rps for t in session.ticks)
        session.changes.set_workers(1)
        after = seconds_after(session, 4)
        assert sum(t.fail_rps for t in list(session.ticks)) == failed_before, [t.errors for t in after]

        # a with a new pool size restarts the app: the load comes back on both workers again.
        session.changes.set_workers(2)
        session.changes.apply(session.config.replace(pool_max=12))
        restarted_at = time.monotonic()
        wait_for(lambda: session.ticks[-1].rps >= 1.7 * one_worker, timeout=20, what="throughput after the restart")
        # The users reconnect in a burst that lands where a worker woke first; loadtui then spreads them (its
        # `rebalanced` event): the shares are judged once it says so.
        wait_for(
            lambda: [e for e in session.events if e.kind == "rebalanced" and "after restart" in e.message],
            timeout=20,
            what="the load spread after the restart",
        )
        shares = request_shares(seconds_after(session, 4))
        assert len(shares) == 2 and min(shares.values()) >= 0.3, shares
        assert time.monotonic() - restarted_at < 30
    finally:
        session.close()
