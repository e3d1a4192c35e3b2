"""Spread the load generator's connections over the app's workers after a worker change or a restart.

A keep-alive connection stays on the worker that accepted it (DESIGN 4.2): after `+` the new worker serves
nothing, and after a restart the users' reconnection burst lands wherever a worker woke first. loadtui sees which
worker holds which connection (each worker's accepted sockets, by the client's port, from the kernel via psutil), asks
the load generator to move the surplus of the crowded workers (:func:`plan`), and checks again, a few rounds within
a few seconds. The moved users reconnect one by one, and a worker that is free to accept takes them, which is the one
with room. :func:`shares` reports the result per worker, by requests where the worker reports them, else by CPU.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import psutil

from loadtui.model import Tick

TOLERANCE = 0.25
"""A worker may hold this share more or fewer connections than an even split before any moves."""

MAX_ROUNDS = 5
"""Moves at most this many times per change."""


def connections_by_worker(worker_pids: Sequence[int], port: int) -> dict[int, list[int]]:
    """For each worker, the client ports of the established connections it accepted on `port`."""
    out: dict[int, list[int]] = {}
    for pid in worker_pids:
        try:
            conns = psutil.Process(pid).net_connections(kind="tcp")
        except psutil.Error:
            continue
        out[pid] = sorted(
            c.raddr.port
            for c in conns
            if c.status == psutil.CONN_ESTABLISHED and c.laddr and c.laddr.port == port and c.raddr
        )
    return out


def balanced(counts: Mapping[int, int], tolerance: float = TOLERANCE) -> bool:
    """True when no worker holds more than its even share plus the tolerance (at least one connection of slack)."""
    if len(counts) < 2:
        return True
    total = sum(counts.values())
    even = total / len(counts)
    slack = max(1.0, tolerance * even)
    return all(abs(n - even) <= slack for n in counts.values())


def plan(connections: Mapping[int, Sequence[int]], tolerance: float = TOLERANCE) -> list[int]:
    """Client ports to move so that no worker keeps more than its even share (rounded up).

    Nothing moves when the split is already within the tolerance, or there is one worker. The surplus is taken from
    the crowded workers only; where the moved connections land is up to the kernel and the workers' readiness.
    """
    counts = {pid: len(ports) for pid, ports in connections.items()}
    if balanced(counts, tolerance):
        return []
    even = math.ceil(sum(counts.values()) / len(counts))
    moves: list[int] = []
    for _pid, ports in sorted(connections.items()):
        surplus = len(ports) - even
        if surplus > 0:
            moves.extend(list(ports)[:surplus])
    return moves


def shares(ticks: Sequence[Tick]) -> dict[int, float]:
    """Each worker's share of the work over `ticks` (the workers of the last one).

    By the requests each worker reports where all of them report some (a blocked worker publishes irregularly, so
    each worker's mean is over the seconds it did report), else by CPU.
    """
    if not ticks or not ticks[-1].workers:
        return {}
    pids = [w.pid for w in ticks[-1].workers]

    def mean(values: list[float]) -> float | None:
        return sum(values) / len(values) if values else None

    requests = {
        pid: mean([w.requests_per_s for t in ticks for w in t.workers if w.pid == pid and w.requests_per_s is not None])
        for pid in pids
    }
    cpu = {pid: mean([w.cpu_percent for t in ticks for w in t.workers if w.pid == pid]) or 0.0 for pid in pids}
    figures: dict[int, float] = cpu
    if all(v is not None for v in requests.values()) and sum(v or 0.0 for v in requests.values()) > 0:
        figures = {pid: v or 0.0 for pid, v in requests.items()}
    total = sum(figures.values())
    if total <= 0:
        return {pid: round(1 / len(pids), 3) for pid in pids}
    return {pid: round(v / total, 3) for pid, v in figures.items()}


def within(shares_now: Mapping[int, float], low: float = 0.5, high: float = 1.5) -> bool:
    """True when every worker's share is between `low` and `high` times an even share (1/N)."""
    if not shares_now:
        return True
    even = 1 / len(shares_now)
    return all(low * even <= s <= high * even for s in shares_now.values())
