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
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import psutil

from loadtui.model import Tick

TOLERANCE = 0.25
"""A worker may hold this share more or fewer connections than an even split before any moves."""

MAX_ROUNDS = 5
"""Moves at most this many times per change."""

SPREAD_S = 0.5
"""Moved users reconnect one by one over this many seconds, so a worker free to accept takes each."""

CONNECT_S = 5.0
"""After a restart, wait at most this long for the users to connect before spreading them."""


# pragma: no mutate start (the OS's own sockets of real workers: tests/integration)
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


# pragma: no mutate end
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


@dataclass(frozen=True)
class Spread:
    """What spreading did: how many connections moved, in how many rounds, the split last seen, and how long."""

    moved: int
    rounds: int
    connections: dict[int, int]
    seconds: float


def spread(
    connections: Callable[[], dict[int, list[int]]],
    move: Callable[[list[int], float, float], None],
    users: int,
    stop: threading.Event,
) -> Spread | None:
    """Move connections until the workers hold even shares, up to MAX_ROUNDS; None when `stop` was set.

    `connections()` gives each worker's client ports now; `move(ports, spread_s, fraction)` asks the load generator
    to reconnect those users (and that `fraction` of users it cannot inspect).
    """
    began = time.monotonic()
    # After a restart or a resume the users are still (re)connecting: wait until most of them are.
    connected_by = began + CONNECT_S
    while time.monotonic() < connected_by:
        if sum(len(p) for p in connections().values()) >= 0.9 * users or stop.wait(0.2):
            break
    moved = rounds = 0
    counts: dict[int, int] = {}
    while rounds < MAX_ROUNDS and not stop.is_set():
        rounds += 1
        now = connections()
        counts = {pid: len(ports) for pid, ports in now.items()}
        moves = plan(now)
        if not moves:
            break
        move(moves, SPREAD_S, len(moves) / max(1, sum(counts.values())))
        moved += len(moves)
        # The moved users reconnect once their request in flight is answered; then look again.
        stop.wait(SPREAD_S + 0.5)
    if stop.is_set():
        return None
    return Spread(moved, rounds, counts, time.monotonic() - began)
