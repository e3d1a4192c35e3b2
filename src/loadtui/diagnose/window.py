"""The last seconds a rule looks at (:class:`Window`) and the figures derived from them by Little's law:
the app's database time, who uses the cores, and the capacity test against the first step.
"""

from __future__ import annotations

import functools
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from loadtui.config import RunConfig
from loadtui.diagnose.thresholds import THRESHOLDS
from loadtui.model import DbStats, Tick


def _busy(db: DbStats) -> int:
    """Connections held by a request: running a query or inside a transaction."""
    return sum(n for state, n in db.by_state.items() if state == "active" or state.startswith("idle in transaction"))


@dataclass(frozen=True)
class DbTime:
    """The app's PostgreSQL connections over a window (pg_stat_activity, loadtui's own excluded), with Little's law.

    Works for any app and driver: it needs no helper, only the database's view of its clients.
    """

    connections: float
    """Connections open, on average."""
    busy: float
    """Running a query or inside a transaction (held by a request), on average."""
    active: float
    """Running a query, on average."""
    rps: float
    p50: float
    all_busy: bool = False
    """Every connection was busy at once in some second of the window."""

    loaded_share: float = 1.0
    """Share of the workers carrying the load: `connections` counts theirs only."""
    pinned: int | None = None
    """N when the busy connections stood at N (their highest) nearly every second: a cap of N, whoever sets it."""

    @property
    def whose(self) -> str:
        """The connections the evidence counts: the app's, or only those of the workers that carry the load."""
        if self.loaded_share >= 1:
            return f"the app's {self.connections:.0f} connections"
        return (
            f"the {self.connections:.0f} connections of the workers carrying the load ({self.loaded_share:.0%} of "
            "them; the others hold almost none of the users' connections)"
        )

    @property
    def busy_share(self) -> float:
        """Share of the open connections in use."""
        return self.busy / self.connections if self.connections else 0.0

    @property
    def hold_ms(self) -> float:
        """Little's law: a request holds a connection busy / req/s (whatever the number of queries it runs)."""
        return self.busy / self.rps * 1000

    @property
    def query_ms(self) -> float:
        """Little's law on the active connections: time per request spent running queries."""
        return self.active / self.rps * 1000

    @property
    def hold_share(self) -> float:
        """Share of the users' p50 spent holding a connection."""
        return self.hold_ms / self.p50 if self.p50 > 0 else 0.0


@dataclass(frozen=True)
class CoresUsed:
    """The machine's CPU over a window: in all (% of all cores) and by whom (cores)."""

    total: float
    cores: int
    app: float
    loadgen: float
    other: float
    """Everything else: PostgreSQL on this machine, other processes."""
    outside: float = 0.0
    """Of `other`, the processes outside loadtui's tree (other programs on the machine)."""


@dataclass(frozen=True)
class Window:
    """The last seconds, with the aggregates most rules need."""

    ticks: Sequence[Tick]
    config: RunConfig
    probe_base: float = 0.0
    """The fastest probe seen in the session, ms: the network's share of a probe (a millisecond on loopback, more
    for a --host far away), which no wait of the app's is."""
    history: Sequence[Tick] = ()
    """Earlier seconds, oldest first, ending with the window's: what the queueing rules compare with."""
    memo: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    """Each rule's result over this window, computed once however many rules ask for it (see :func:`once`)."""

    @property
    def last(self) -> Tick:
        """The newest second."""
        return self.ticks[-1]

    def mean(self, fn: Callable[[Tick], float | None]) -> float | None:
        """Mean of `fn` over the window, ignoring seconds where it is None."""
        values = [v for v in (fn(t) for t in self.ticks) if v is not None]
        return statistics.fmean(values) if values else None

    @property
    def rps(self) -> float:
        """Mean requests/s."""
        return self.mean(lambda t: t.rps) or 0.0

    @property
    def p50(self) -> float | None:
        """Mean per-second median latency, ms."""
        return self.mean(lambda t: t.latency.p50)

    @property
    def p95(self) -> float | None:
        """Mean per-second p95 latency, ms."""
        return self.mean(lambda t: t.latency.p95)

    def worker_cpu(self) -> dict[int, float]:
        """Mean CPU per worker pid over the window (pids present in the last second)."""
        out: dict[int, float] = {}
        for w in self.last.workers:
            values = [x.cpu_percent for t in self.ticks for x in t.workers if x.pid == w.pid]
            out[w.pid] = statistics.fmean(values)
        return out

    def outside_cpu(self) -> dict[int, tuple[str, float]]:
        """The processes outside loadtui's tree: each one's name and mean % of a core over the window (a second in
        which one was not among the busiest counts as 0)."""
        out: dict[int, tuple[str, float]] = {}
        for t in self.ticks:
            for o in t.outside:
                out[o.pid] = (o.name, out.get(o.pid, ("", 0.0))[1] + o.cpu_percent / len(self.ticks))
        return out

    def worker_rps(self) -> dict[int, float] | None:
        """Mean requests/s each worker reported over the window (pids of the last second); None unless all report.

        A blocked worker cannot publish every second: its mean is over the seconds it did.
        """
        out: dict[int, float] = {}
        for w in self.last.workers:
            values = [x.requests_per_s for t in self.ticks for x in t.workers if x.pid == w.pid]
            present = [v for v in values if v is not None]
            if not present:
                return None
            out[w.pid] = statistics.fmean(present)
        return out or None

    def per_worker_text(self) -> str:
        """Requests/s per worker as measured ("19.6 / 0.0 req/s per worker"), else the total and the worker count."""
        rps = self.worker_rps()
        if rps is not None:
            return " / ".join(f"{v:.1f}" for v in rps.values()) + " req/s per worker"
        n = len(self.last.workers)
        return f"{self.rps:.0f} req/s over {n} worker{'s' if n != 1 else ''}"

    @property
    def app_cpu_mean(self) -> float:
        """Mean CPU per worker, % of one core."""
        cpu = self.worker_cpu()
        return statistics.fmean(cpu.values()) if cpu else 0.0

    @functools.cached_property
    def probe_wait(self) -> float | None:
        """Mean wait of loadtui's probe requests over the window beyond the network's share (None without probes)."""
        wait = self.mean(lambda t: t.probe.wait_ms if t.probe is not None else None)
        return None if wait is None else max(0.0, wait - self.probe_base)

    @functools.cached_property
    def fixed_delay_ms(self) -> float:
        """The delay the server adds to every answer on a kept-alive connection (0 when none): the probe's kept-alive
        time less its fresh-connection time, when they show the Nagle + delayed-ACK signature (see nodelay_delay)."""
        kept = self.mean(lambda t: t.probe.kept_p50_ms if t.probe is not None else None)
        fresh = self.mean(lambda t: t.probe.p50_ms if t.probe is not None else None)
        if kept is None or fresh is None or kept < THRESHOLDS.nodelay_low_ms or fresh > kept / 4:
            return 0.0
        return kept - fresh

    @functools.cached_property
    def database(self) -> DbTime | None:
        """How the app's database connections were used over the window (None without PostgreSQL's figures)."""
        dbs = [t.db for t in self.ticks if t.db is not None]
        if not dbs or self.rps < THRESHOLDS.min_rps or self.p50 is None:
            return None
        busy = statistics.fmean(_busy(db) for db in dbs)
        active = statistics.fmean(db.by_state.get("active", 0) for db in dbs)
        # Only the workers that carry the load use their pools (each worker has its own, of the same size).
        share = self.loaded_workers_share
        conns = statistics.fmean(db.connections for db in dbs) * share
        all_busy = any(_busy(db) >= db.connections * share > 0 for db in dbs)
        per_second = [_busy(db) for db in dbs]
        top = max(per_second)
        pinned = top if top >= 1 and per_second.count(top) >= THRESHOLDS.pinned_share * len(dbs) else None
        return DbTime(
            connections=conns,
            busy=busy,
            active=active,
            rps=self.rps,
            p50=self.p50,
            all_busy=all_busy,
            loaded_share=share,
            pinned=pinned,
        )

    @functools.cached_property
    def loaded_workers_share(self) -> float:
        """Share of the workers that carry the load: the kernel spreads kept-alive connections unevenly, and a worker
        far quieter than the busiest has (almost) none of them."""
        cpu = self.worker_cpu()
        busiest = max(cpu.values(), default=0.0)
        if busiest <= 0:
            return 1.0
        return sum(1 for v in cpu.values() if v >= THRESHOLDS.loaded_worker_share * busiest) / len(cpu)

    @functools.cached_property
    def cores_used(self) -> CoresUsed | None:
        """Who used the machine's cores over the window (None without the machine's figure)."""
        total = self.mean(lambda t: t.machine_cpu_percent)
        if total is None:
            return None
        cores = self.last.cpu_count
        app = sum(self.worker_cpu().values()) / 100
        loadgen = (self.mean(lambda t: t.loadgen_cpu_percent) or 0.0) / 100
        other = max(0.0, total / 100 * cores - app - loadgen)
        outside = min(other, sum(cpu for _, cpu in self.outside_cpu().values()) / 100)
        return CoresUsed(total, cores, app, loadgen, other, outside)

    @property
    def users_waiting_share(self) -> float | None:
        """Share of their time the users wait for answers (Little's law: req/s × p50 / users); None without users."""
        users = self.last.users
        if users <= 0 or self.p50 is None:
            return None
        return min(1.0, self.rps * self.p50 / 1000 / users)

    @property
    def steady_users(self) -> bool:
        """True when the user count did not change in the window."""
        return len({t.users for t in self.ticks}) == 1


@dataclass(frozen=True)
class Capacity:
    """How throughput and latency answered more users: the evidence of a queue (and its Little's-law numbers)."""

    users_before: float
    users_now: float
    rps_before: float
    rps_now: float
    p50_before: float
    p50_now: float

    @property
    def throughput_flat(self) -> bool:
        """Throughput grew by less than half as much as the users."""
        users_growth = self.users_now / self.users_before - 1
        return self.rps_now / self.rps_before - 1 <= THRESHOLDS.queueing_rps_share * users_growth

    @property
    def in_flight(self) -> float:
        """Little's law: requests in the system = throughput × time in the system."""
        return self.rps_now * self.p50_now / 1000


def concurrency(tick: Tick) -> int:
    """Requests the load keeps in the app at once, at most: the users (each waits for its answer), or with `--rate`
    the arrivals in flight (what Little's law counts; the user instances are only the clients they run on)."""
    return tick.open.in_flight if tick.open is not None else tick.users


def capacity(w: Window, history: Sequence[Tick], *, latency_only: bool = False) -> Capacity | None:
    """Users grew, latency grew with them, throughput did not: the app is at a fixed capacity (a queue).

    `latency_only`: the latency's growth suffices (for a rule that has its own proof of where requests wait; the
    throughput test is thrown off when the lower level's latency holds a fixed delay, such as Nagle's 40 ms).

    In a closed loop (each user waits for its answer), throughput ≈ users / latency. A server with room answers more
    users with more requests/s at the same latency; a server at capacity answers them with the same requests/s and a
    latency that grows with the users. The earlier seconds are those of the history with the fewest users, if clearly
    fewer than now (a ramp, or the w/W keys).
    """
    if w.p50 is None or w.rps < THRESHOLDS.min_rps:
        return None
    users_now = concurrency(w.last)
    cutoff = users_now / THRESHOLDS.queueing_users_growth
    fewer = [
        t
        for t in history[: -len(w.ticks)]
        if 0 < concurrency(t) <= cutoff and t.latency.p50 is not None and t.rps >= THRESHOLDS.min_rps
    ]
    if not fewer or any(concurrency(t) < users_now for t in w.ticks):
        return None
    fewest = min(concurrency(t) for t in fewer)
    before = [t for t in fewer if concurrency(t) == fewest]
    users_before = statistics.fmean(concurrency(t) for t in before)
    rps_before = statistics.fmean(t.rps for t in before)
    p50_before = statistics.fmean(t.latency.p50 for t in before if t.latency.p50 is not None)
    # A fixed delay outside the app (Nagle's 40 ms on kept-alive connections) is in every request's latency at
    # any load: it does not queue, so the growth is judged without it.
    delay = min(w.fixed_delay_ms, p50_before / 2)
    if p50_before <= 0 or w.p50 - delay < THRESHOLDS.queueing_growth * (p50_before - delay):
        return None
    c = Capacity(users_before, users_now, rps_before, w.rps, p50_before, w.p50)
    if not latency_only and not c.throughput_flat:
        return None
    return c


def probe_floor(ticks: Sequence[Tick]) -> float | None:
    """The fastest probe among `ticks` (the per-second medians), or None without probes."""
    return min((t.probe.p50_ms for t in ticks if t.probe is not None and t.probe.p50_ms is not None), default=None)


R = TypeVar("R")


def once(rule: Callable[[Window], R]) -> Callable[[Window], R]:
    """A rule computed once per window: a rule that asks whether another holds (a blocked loop rules out a pool
    queue...) reads its result instead of computing it again."""
    name = rule.__qualname__

    @functools.wraps(rule)
    def cached(w: Window) -> R:
        if name not in w.memo:
            w.memo[name] = rule(w)
        result: R = w.memo[name]
        return result

    return cached
