"""Diagnosis: name the bottleneck, with the numbers that prove it.

Pure functions over the recent Ticks and the RunConfig (no Textual, no I/O). Each rule looks at a window of seconds
and returns a :class:`~loadtui.model.Finding` or None; :class:`Diagnoser` adds hysteresis, so a finding starts only
after its condition held for a few seconds and ends the same way, without flicker. The thresholds live in one table,
:data:`THRESHOLDS`, and the README explains each rule.
"""

from __future__ import annotations

import dataclasses
import statistics
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from loadtui.config import RunConfig
from loadtui.model import DbStats, Finding, FindingId, Signal, Tick
from loadtui.units import ms


@dataclass(frozen=True)
class Thresholds:
    """Every number the rules use, in one place; the README explains each rule."""

    window_s: int = 5
    """Seconds a rule looks back over."""
    start_after_s: int = 3
    """Consecutive seconds a condition must hold before its finding starts."""
    clear_after_s: int = 3
    """Consecutive seconds it must be gone before the finding ends."""
    busy_worker_cpu: float = 85.0
    """% of one core: a worker this busy is CPU-bound."""
    idle_cpu: float = 50.0
    """% of one core: below this a worker is mostly waiting."""
    idle_worker_cpu: float = 20.0
    """% of one core: a worker this quiet beside a pinned one gets almost no connections."""
    loadgen_saturated: float = 90.0
    """% of each load-generator core."""
    loop_lag_ms: float = 100.0
    """Event-loop lag that means something blocks the loop."""
    threadpool_threads: int = 40
    """Anyio's default thread limit per worker (sync endpoints run there)."""
    threadpool_busy_share: float = 0.9
    """This share of a worker's threadpool busy on average over the window counts as full."""
    pool_waiting: float = 1.0
    """Requests waiting for a pooled connection, on average."""
    db_limit_margin: int = 1
    """Connections within this many of the app's limit count as "at the limit"."""
    pool_busy_share: float = 0.5
    """Without the helper: this share of the app's database connections busy (running a query or inside a
    transaction) on average over the window, and every one of them busy at once in some second, means its pool has
    none to spare. (Not nearer 100 %: a connection handed from one request to the next is idle for the round trip of
    its reset and the waiter's wake-up, a large share of a short query on a loaded machine.)"""
    loaded_worker_share: float = 0.25
    """A worker using less than this share of the busiest worker's CPU carries (almost) none of the load: its pool
    idles while the loaded workers' pools fill, so the app's busy share is judged over the loaded workers' part."""
    db_hold_share: float = 0.5
    """Little's law on the app's connections: a request holds one busy connections / req/s. Holding it this share of
    the users' p50 or more, the database is where the time goes; less, with every connection busy, requests wait for
    one inside the app."""
    slow_db_ms: float = 10.0
    """Database time per request (Little's law, as above) from which queries count as slow: web queries take a
    millisecond or two, so a fast app spending most of a 3 ms answer in the database is not database-bound."""
    nodelay_low_ms: float = 36.0
    """The Nagle + delayed-ACK floor of stock multi-worker uvicorn sits near 40-44 ms: this far below it ..."""
    nodelay_high_ms: float = 50.0
    """... and this far above it, every second."""
    queueing_users_growth: float = 1.5
    """Users grew by this factor since an earlier second ..."""
    queueing_growth: float = 1.5
    """... latency grew by this factor ..."""
    queueing_rps_share: float = 0.5
    """... and throughput grew by less than this share of the users' growth."""
    serial_per_worker: float = 1.5
    """Without the helper: ≤ this many requests served at once per worker = serialized."""
    machine_busy: float = 95.0
    """% of all the machine's cores, on average over the window: the machine is out of CPU."""
    min_rps: float = 1.0
    """Below this there is too little traffic to judge latency."""
    probe_blocked_ms: float = 50.0
    """A probe (a 404 that runs no app code, normally 1–3 ms) waiting this long means the event loop ran nothing."""
    probe_blocked_share: float = 0.25
    """...and at least this share of the users' p50: the probe waits in the same line as the users' requests (with
    several workers it is accepted by the least-loaded loop, so it waits less than the average user)."""
    probe_free_share: float = 0.1
    """A probe answered within this share of the users' p50: the loop is free and the users wait inside the app."""
    demand_share: float = 0.5
    """Little's law on the users: requests in flight (req/s × p50) over users is the share of their time they wait
    for answers. Below this, they mostly think between requests: the app has room, and what takes a request's time
    is not what limits the load (a bottleneck claim needs users held back by it)."""
    pinned_share: float = 0.8
    """Without the helper, for a pool loadtui cannot read (any library): the app's busy connections stood at their
    window's highest count N in this share of the seconds, never above it: something admits N at once."""
    lock_busy_share: float = 0.25
    """This share of the app's busy connections waiting on a lock, on average: requests wait for each other's rows."""
    lock_p50_share: float = 0.25
    """...and by Little's law the lock wait per request (waiting / req/s) is this share of the users' p50 or more."""
    disturbed_cores: float = 0.1
    """Processes outside loadtui's tree using this share of all cores, on average: another program competes."""
    disturbed_steal: float = 5.0
    """% of the cores taken by a hypervisor for other guests (steal time): the VM's neighbours compete."""

    @property
    def first_verdict_s(self) -> int:
        """Seconds before the rules can have named anything (a full window, then a finding's start delay).

        Before that, no finding means "not judged yet", not "nothing wrong".
        """
        return self.window_s + self.start_after_s


THRESHOLDS = Thresholds()
"""The thresholds in force."""

DB_LIMIT_MESSAGES = ("too many clients", "remaining connection slots are reserved", "too many connections")


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

    @property
    def probe_wait(self) -> float | None:
        """Mean wait of loadtui's probe requests over the window beyond the network's share (None without probes)."""
        wait = self.mean(lambda t: t.probe.wait_ms if t.probe is not None else None)
        return None if wait is None else max(0.0, wait - self.probe_base)

    @property
    def fixed_delay_ms(self) -> float:
        """The delay the server adds to every answer on a kept-alive connection (0 when none): the probe's kept-alive
        time less its fresh-connection time, when they show the Nagle + delayed-ACK signature (see nodelay_delay)."""
        kept = self.mean(lambda t: t.probe.kept_p50_ms if t.probe is not None else None)
        fresh = self.mean(lambda t: t.probe.p50_ms if t.probe is not None else None)
        if kept is None or fresh is None or kept < THRESHOLDS.nodelay_low_ms or fresh > kept / 4:
            return 0.0
        return kept - fresh

    @property
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

    @property
    def loaded_workers_share(self) -> float:
        """Share of the workers that carry the load: the kernel spreads kept-alive connections unevenly, and a worker
        far quieter than the busiest has (almost) none of them."""
        cpu = self.worker_cpu()
        busiest = max(cpu.values(), default=0.0)
        if busiest <= 0:
            return 1.0
        return sum(1 for v in cpu.values() if v >= THRESHOLDS.loaded_worker_share * busiest) / len(cpu)

    @property
    def cores_used(self) -> CoresUsed | None:
        """Who used the machine's cores over the window (None without the machine's figure)."""
        total = self.mean(lambda t: t.machine_cpu_percent)
        if total is None:
            return None
        cores = self.last.cpu_count
        app = sum(self.worker_cpu().values()) / 100
        loadgen = (self.mean(lambda t: t.loadgen_cpu_percent) or 0.0) / 100
        return CoresUsed(total, cores, app, loadgen, max(0.0, total / 100 * cores - app - loadgen))

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


def measurement_disturbed(w: Window) -> Finding | None:
    """Another program uses a share of the cores (or a hypervisor gives them to other guests): the figures measure
    the app under that competition, and will not compare with a run without it.

    Counts processes outside loadtui's tree (not the app, the load generator, PostgreSQL or loadtui; kernel threads
    excluded) and the machine's steal time, on average over the window.
    """
    cores = w.last.cpu_count
    usage: dict[int, float] = {}
    names: dict[int, str] = {}
    for t in w.ticks:
        for o in t.outside:
            usage[o.pid] = usage.get(o.pid, 0.0) + o.cpu_percent / len(w.ticks)
            names[o.pid] = o.name
    outside = sum(usage.values()) / 100
    steal = w.mean(lambda t: t.steal_percent) or 0.0
    if outside < THRESHOLDS.disturbed_cores * cores and steal < THRESHOLDS.disturbed_steal:
        return None
    busiest = sorted(usage.items(), key=lambda kv: -kv[1])[:3]
    who = ", ".join(f"{names[pid]} (pid {pid}) {cpu:.0f}% of a core" for pid, cpu in busiest)
    parts = [f"outside loadtui's processes: {who}; {outside:.1f} of {cores} cores in all"] if busiest else []
    if steal >= THRESHOLDS.disturbed_steal:
        parts.append(f"steal time {steal:.0f}% (the hypervisor gave the cores to other guests)")
    return Finding(
        id="measurement-disturbed",
        severity="warning",
        title="The measurement is disturbed: another program competes for the cores",
        evidence="; ".join(parts),
        advice="These figures measure the app beside that load, and will not compare with a run without it (loadtui "
        "compare says so). Stop the other program, or measure on a quiet machine.",
        signals=["process"],
    )


def lock_contention(w: Window) -> Finding | None:
    """Requests wait for each other's row or table locks in PostgreSQL: a hot row every request updates.

    pg_stat_activity counts the app's backends waiting on a lock; by Little's law waiting / req/s is how long each
    request waits for one. Claimed only when that is a real share of the users' latency.
    """
    d = w.database
    if d is None:
        return None
    waits = w.mean(lambda t: t.db.waiting_on_locks if t.db is not None else None) or 0.0
    if waits < 1 or waits < THRESHOLDS.lock_busy_share * d.busy:
        return None
    wait_ms = waits / d.rps * 1000
    if wait_ms < THRESHOLDS.slow_db_ms or wait_ms < THRESHOLDS.lock_p50_share * d.p50:
        return None
    last = next((t.db for t in reversed(w.ticks) if t.db is not None and t.db.lock_query), None)
    where = ""
    if last is not None:
        table = f" on {last.lock_relation}" if last.lock_relation else ""
        where = f"; waiting{table}: `{last.lock_query}`"
        if last.lock_blocker:
            where += f", held by: `{last.lock_blocker}`"
    return Finding(
        id="lock-contention",
        severity="warning",
        title="Requests wait on each other's locks in PostgreSQL: a hot row or table",
        evidence=f"{waits:.1f} of {d.busy:.1f} busy connections wait on a lock on average, so by Little's law each "
        f"request waits {wait_ms:.0f} ms for one ({waits:.1f} / {d.rps:.0f} req/s) of its p50 {ms(d.p50)}{where}",
        advice="Every request updates the same rows and waits for the one before it: keep transactions short (commit "
        "before other awaits), spread a hot counter (a row per worker summed on read, or INSERT instead of UPDATE), "
        "use SELECT … FOR UPDATE SKIP LOCKED for queues. More workers or a bigger pool only add waiters.",
        signals=["database", "load"],
    )


def machine_saturated(w: Window) -> Finding | None:
    """Every core of the machine is busy: the app, the load generator and PostgreSQL compete for them.

    On a laptop-sized machine they share the cores, and then every other figure is capped by the machine: more
    workers or a bigger pool cannot help. Says who uses the cores (app workers, load generator, the rest).
    """
    use = w.cores_used
    if use is None or use.total < THRESHOLDS.machine_busy or w.rps < THRESHOLDS.min_rps:
        return None
    total, cores, app, loadgen, other = use.total, use.cores, use.app, use.loadgen, use.other
    return Finding(
        id="machine-saturated",
        severity="warning",
        title="The machine is out of CPU: app, load generator and database share its cores",
        evidence=f"all {cores} cores {total:.0f}% busy: app workers {app:.1f} cores, load generator {loadgen:.1f}, "
        f"the rest (PostgreSQL, other processes) {other:.1f}, at {w.rps:.0f} req/s",
        advice="Every other figure is capped by the machine: more workers or a bigger pool cannot help here. Run the "
        "load generator elsewhere (--master-bind and remote workers) or the database (--dsn), or measure on a "
        "bigger machine.",
        signals=["process"],
    )


def loadgen_saturated(w: Window) -> Finding | None:
    """The load generator's processes are near 100 % of their cores: the numbers measure it, not the app."""
    if w.last.loadgen is None:
        return None
    cores = max(1, w.last.loadgen.cores)
    cpu = w.mean(lambda t: t.loadgen_cpu_percent) or 0.0
    if cpu < THRESHOLDS.loadgen_saturated * cores:
        return None
    return Finding(
        id="loadgen-saturated",
        severity="critical",
        title="The load generator is saturated: these numbers measure Locust, not your app",
        evidence=f"load generator CPU {cpu:.0f}% of {cores * 100}% ({cores} process{'es' if cores > 1 else ''}) "
        f"at {w.rps:.0f} req/s",
        advice="Run more load-generator processes (--loadgen-processes auto) or fewer users; on a 2-core machine the app "
        "and Locust compete for the same cores.",
        signals=["load", "process"],
    )


def too_few_workers(w: Window) -> Finding | None:
    """A worker is near 100 % of a core while other cores are idle: one process cannot use more than one core."""
    cpu = w.worker_cpu()
    if not cpu or w.rps < THRESHOLDS.min_rps:
        return None
    busiest = max(cpu.values())
    if min(cpu.values()) < THRESHOLDS.busy_worker_cpu:
        # Some worker has room: with few keep-alive connections the kernel may have given them all to one worker;
        # more workers would not help that.
        return None
    cores = w.last.cpu_count
    used = sum(cpu.values()) + (w.mean(lambda t: t.loadgen_cpu_percent) or 0.0)
    idle_cores = cores - used / 100
    if idle_cores < 0.5 and len(cpu) >= 1 and w.config.workers >= cores:
        return None
    return Finding(
        id="too-few-workers",
        severity="warning",
        title=f"Too few workers: {len(cpu)} worker{'s' if len(cpu) > 1 else ''} at the limit of one core each",
        evidence=f"busiest worker {busiest:.0f}% CPU (a process uses at most 100%), {len(cpu)} worker(s) on {cores} cores, "
        f"about {max(0.0, idle_cores):.1f} core(s) idle, p95 {ms(w.p95)} at {w.rps:.0f} req/s",
        advice="Add workers with + (uvicorn --workers N): each is a process with its own core.",
        signals=["process"],
    )


def worker_imbalance(w: Window) -> Finding | None:
    """One worker pinned while another idles: keep-alive connections stay on the worker that accepted them."""
    cpu = w.worker_cpu()
    if len(cpu) < 2 or w.rps < THRESHOLDS.min_rps:
        return None
    busiest, idlest = max(cpu.values()), min(cpu.values())
    if busiest < THRESHOLDS.busy_worker_cpu or idlest > THRESHOLDS.idle_worker_cpu:
        return None
    return Finding(
        id="worker-imbalance",
        severity="info",
        title="The load is uneven: one worker is pinned while another idles",
        evidence=f"worker CPU {' / '.join(f'{v:.0f}%' for v in cpu.values())} at {w.rps:.0f} req/s with {w.last.users} users",
        advice="Each keep-alive connection stays on the worker that accepted it, and a worker added live gets only new "
        "connections. loadtui moves its own users' connections after a change (unless --no-rebalance); your real "
        "clients keep theirs until they reconnect: limit keep-alive time or requests per connection in front of the "
        "app, or balance in a proxy.",
        signals=["process"],
    )


BLOCKED_TITLE = "The event loop is blocked: requests wait in line while the CPU idles"
BLOCKED_ADVICE = (
    "A blocking call runs inside `async def` (time.sleep, requests, a sync driver). Make it async, or declare the "
    "endpoint with plain `def` so it runs in the threadpool; press p (headless samples it by itself) for the frame it is stuck in."
)


def event_loop_blocked(w: Window) -> Finding | None:
    """Requests wait for the event loop while the CPU idles: something blocks inside `async def` (a sync call).

    With the helper: its loop-lag figure. Without it: loadtui's probe requests (probe.py), which run no app code but
    need the loop to accept, read and answer them; when they wait as long as the users' requests (and far longer than
    the millisecond a 404 takes), the loop runs nothing while a call blocks it. Low CPU tells blocking from busy.
    """
    if w.p50 is None or w.rps < THRESHOLDS.min_rps or w.app_cpu_mean > THRESHOLDS.idle_cpu:
        return None
    lags = [x.loop_lag_ms for t in w.ticks for x in t.workers if x.loop_lag_ms is not None]
    if lags:
        lag = statistics.fmean(lags)
        if lag < THRESHOLDS.loop_lag_ms:
            return None
        return Finding(
            id="event-loop-blocked",
            severity="critical",
            title=BLOCKED_TITLE,
            evidence=f"event-loop lag {lag:.0f} ms on average, worker CPU {w.app_cpu_mean:.0f}%, p50 {ms(w.p50)} at "
            f"{w.rps:.0f} req/s ({w.per_worker_text()})",
            advice=BLOCKED_ADVICE,
            signals=["helper", "process"],
        )
    probe = w.probe_wait
    if probe is None or probe < THRESHOLDS.probe_blocked_ms or probe < THRESHOLDS.probe_blocked_share * w.p50:
        return None
    return Finding(
        id="event-loop-blocked",
        severity="critical",
        title=BLOCKED_TITLE,
        evidence=f"probe requests to a path the app does not route (a 404 that runs none of its code, normally 1–3 ms) "
        f"waited {ms(probe)}, users' p50 {ms(w.p50)}, worker CPU {w.app_cpu_mean:.0f}% at {w.rps:.0f} req/s "
        f"({w.per_worker_text()}): the loop runs nothing while a call blocks it",
        advice=BLOCKED_ADVICE,
        signals=["probe", "process"],
    )


def app_concurrency_limit(w: Window, history: Sequence[Tick]) -> Finding | None:
    """Requests queue inside the app for something that admits a fixed number at once, while the loop is free.

    A semaphore, a lock, a rate-limited or connection-capped dependency: throughput stays flat as users grow (the
    queueing evidence), the CPU idles, and the probe is answered at once (so the event loop is not blocked). What is
    left once the threadpool, the app's database pool and the database itself are ruled out is the app's own limit.
    """
    probe = w.probe_wait
    if probe is None or w.p50 is None or probe > THRESHOLDS.probe_free_share * w.p50:
        return None
    if w.app_cpu_mean > THRESHOLDS.idle_cpu or threadpool_full(w) is not None:
        return None
    if database_queue(w):
        return None  # the app's pool or the database is the limit: pool-exhausted or db-bound names it
    c = capacity(w, history, latency_only=True)
    if c is None:
        return None
    return Finding(
        id="app-concurrency-limit",
        severity="warning",
        title="Requests wait inside the app for something that admits only a few at once",
        evidence=f"users {c.users_before:.0f} → {c.users_now:.0f}, req/s {c.rps_before:.0f} → {c.rps_now:.0f}, p50 "
        f"{ms(c.p50_before)} → {ms(c.p50_now)}, while probe requests were answered in {ms(probe)}: the event loop is "
        f"free, worker CPU {w.app_cpu_mean:.0f}%, no threadpool, pool or database queue; ≈{min(c.in_flight, c.users_now):.0f} requests wait in the app",
        advice="Look for a semaphore, lock, rate limit or connection cap in the code or a client it calls (press p for "
        "where requests wait); raise that limit, or cache what it guards. More workers help only if the limit is per process.",
        signals=["probe", "load", "process"],
    )


def threadpool_full(w: Window) -> tuple[int, str, list[Signal]] | None:
    """Every worker's threadpool in use over the window: (threads in all pools, what showed it, signals); else None.

    With the helper, each worker reports how many of its threadpool's threads are busy (anyio's limiter). Without
    it, the OS thread count: anyio starts threads only when sync calls need them, up to its limit, so a worker with
    that many threads has used them all; the requests in flight (helper) or a free event loop (the probe: the loop
    answers while every thread is taken) show they are in use now.
    """
    workers = w.last.workers
    if not workers:
        return None
    default = THRESHOLDS.threadpool_threads
    if all(x.threads_busy is not None for x in workers):
        limits = {x.pid: x.threads_limit or default for x in workers}
        busy = {
            x.pid: statistics.fmean(
                [y.threads_busy for t in w.ticks for y in t.workers if y.pid == x.pid and y.threads_busy is not None]
            )
            for x in workers
        }
        if any(busy[pid] < THRESHOLDS.threadpool_busy_share * limits[pid] for pid in limits):
            return None
        threads = sum(limits.values())
        return threads, f"{sum(busy.values()):.0f} of {threads} threadpool threads busy", ["helper"]
    if all(x.in_flight is not None for x in workers):
        if not all((x.threads or 0) >= default and (x.in_flight or 0) >= default for x in workers):
            return None
        in_flight = sum(x.in_flight or 0 for x in workers)
        threads = int(default) * len(workers)
        return threads, f"≥{default:.0f} threads and {in_flight} requests in flight per worker", ["helper", "process"]
    # Without the helper: a worker that reached anyio's limit has used every thread. Its connections (the kernel
    # spreads them unevenly) wait there even if another worker has a few threads to spare.
    full = [x for x in workers if (x.threads or 0) >= default]
    probe = w.probe_wait
    if not full or probe is None or w.p50 is None or probe > THRESHOLDS.probe_free_share * w.p50:
        return None
    threads = sum(min(int(default), x.threads or 0) for x in workers)
    seen = (
        f"≥{default:.0f} OS threads in {len(full)} of {len(workers)} worker(s) (anyio's limit, so all were needed) "
        f"while probe requests were answered in {ms(probe)}"
    )
    return threads, seen, ["process", "probe"]


def threadpool_saturated(w: Window) -> Finding | None:
    """Sync endpoints use every thread of the pool while the CPU idles: the threadpool caps the throughput.

    By Little's law on the threadpool, threads busy = req/s × time a request holds a thread, so the hold time is
    threads / req/s; the rest of the latency is waiting for a thread.
    """
    if w.app_cpu_mean > THRESHOLDS.idle_cpu or w.p50 is None or w.rps < THRESHOLDS.min_rps:
        return None
    full = threadpool_full(w)
    if full is None:
        return None
    threads, seen, signals = full
    workers = w.last.workers
    hold_ms = threads / w.rps * 1000
    waiting_ms = max(0.0, w.p50 - hold_ms)
    return Finding(
        id="threadpool-saturated",
        severity="warning",
        title=f"The threadpool is full: sync endpoints are capped at {threads // len(workers)} threads per worker",
        evidence=f"{len(workers)} worker(s), {seen}, CPU {w.app_cpu_mean:.0f}% per worker; {w.rps:.0f} req/s = "
        f"{threads} threads / {hold_ms:.0f} ms per request in a thread, so of the p50 {ms(w.p50)} about "
        f"{waiting_ms:.0f} ms is waiting for a thread",
        advice="Make the endpoint `async def` with awaitable I/O, add workers (+), or raise anyio's thread limit.",
        signals=signals,
    )


POOL_TITLE = "The connection pool is exhausted: requests queue for a connection"


def pool_exhausted(w: Window) -> Finding | None:
    """Requests wait for a pooled connection while PostgreSQL could take more connections.

    With the helper: the pool's own waiting count. Without it (any app, any driver): every connection the app holds
    is busy in pg_stat_activity, and by Little's law a request holds one for a small part of its latency — so the
    rest is spent waiting for one inside the app, while the server has free slots.
    """
    db = w.last.db
    if db is not None and db.connections >= db.allowed - THRESHOLDS.db_limit_margin:
        return None  # the database limit, not the pool, is what binds: db-connection-limit says so
    headroom = f"; PostgreSQL uses {db.connections} of {db.allowed} connections" if db is not None else ""
    if not w.last.pools:
        return _pool_exhausted_from_database(w, headroom)
    waiting = w.mean(lambda t: t.pool_waiting) or 0.0
    if waiting < THRESHOLDS.pool_waiting:
        return None
    pools = w.last.pools
    size = sum(p.size for p in pools)
    pool_max = sum(p.max or 0 for p in pools)
    wait_ms = w.mean(lambda t: sum(p.wait_ms for p in t.pools) if t.pools else None) or 0.0
    per_request = wait_ms / max(1.0, w.rps)
    return Finding(
        id="pool-exhausted",
        severity="warning",
        title=POOL_TITLE,
        evidence=f"{waiting:.0f} requests waiting for {size}/{pool_max} pooled connections across {len(pools)} worker(s), "
        f"≈{per_request:.0f} ms waited per request{headroom}",
        advice="Raise the pool max with ] (then a to apply), or make queries shorter; the database has room.",
        signals=["helper"],
    )


def _pool_exhausted_from_database(w: Window, headroom: str) -> Finding | None:
    """The helper-less half of :func:`pool_exhausted`: every app connection busy, requests holding one briefly."""
    d = w.database
    if d is None or d.busy < 1:
        return None
    full = d.busy_share >= THRESHOLDS.pool_busy_share and d.all_busy
    if not full and d.pinned is None:
        return None
    if w.app_cpu_mean > THRESHOLDS.idle_cpu or event_loop_blocked(w) is not None:
        return None  # a blocked loop (a sync driver in async def) runs one query at a time: its line is the loop's
    if d.hold_share >= THRESHOLDS.db_hold_share:
        return None  # requests spend most of their time holding a connection: db-bound's case
    if capacity(w, w.history, latency_only=True) is None:
        # No queue: the latency did not grow with the users. Requests spend their time elsewhere (an awaited call),
        # not waiting for a connection, even if the few connections are often all in use.
        return None
    waited = max(0.0, d.p50 - d.hold_ms)
    if full:
        seen = f"{d.busy:.1f} of {d.whose} busy in PostgreSQL on average ({d.busy_share:.0%}, all at once at times)"
    else:
        # A pool loadtui cannot read (SQLAlchemy's, asyncpg's...) beside connections the app keeps for other uses.
        seen = (
            f"the app's busy connections stood at {d.pinned} nearly every second and never above, while its other "
            f"{max(0.0, d.connections - d.busy):.0f} connections idled: something admits {d.pinned} at once"
        )
    return Finding(
        id="pool-exhausted",
        severity="warning",
        title=POOL_TITLE,
        evidence=f"{seen}{headroom}; by Little's law a request holds one {d.hold_ms:.0f} ms "
        f"({d.busy:.1f} / {d.rps:.0f} req/s), so of the p50 {ms(d.p50)} about {waited:.0f} ms is waiting for a "
        "connection inside the app",
        advice="Raise your pool's max size (per worker: workers × max must fit max_connections), or hold connections "
        "for less time (no other awaits while holding one); the database has room.",
        signals=["database", "load"],
    )


def db_connection_limit(w: Window) -> Finding | None:
    """Connections are refused or at max_connections ("too many clients")."""
    db = w.last.db
    refused = sum(e.new for t in w.ticks for e in t.errors if any(m in e.error.lower() for m in DB_LIMIT_MESSAGES))
    pool_errors = sum(p.errors for t in w.ticks for p in t.pools)
    at_limit = False
    allowed = None
    if db is not None:
        allowed = db.allowed
        at_limit = db.connections >= allowed - THRESHOLDS.db_limit_margin
    if not (refused or at_limit):
        return None  # connection errors alone (a database restarting) are a fault, not the limit
    conns = f"{db.connections} of {db.max_connections} connections ({db.reserved} reserved)" if db else "connections"
    mode = w.config.db_mode
    return Finding(
        id="db-connection-limit",
        severity="critical",
        title="PostgreSQL is out of connections",
        evidence=f"{conns}; {refused} requests failed with 'too many clients' and {pool_errors} connection errors in "
        f"{len(w.ticks)} s; mode {mode}, {w.config.workers} worker(s)",
        advice="Use a pool (d switches database mode) sized so workers × pool max fits max_connections, "
        "or raise max_connections (--db-max-connections).",
        signals=["database", "load"],
    )


def db_bound(w: Window) -> Finding | None:
    """The database holds most of each request's time while the app's workers idle: slow queries.

    Little's law on the app's active connections gives the time a request spends in queries (active / req/s); when
    that is most of the users' latency, and slow in itself, the database is where the time goes — not the app's
    pool (requests would then wait outside the database, see :func:`pool_exhausted`).
    """
    d = w.database
    if d is None or d.active < 1 or w.app_cpu_mean > THRESHOLDS.idle_cpu:
        return None
    if (w.mean(lambda t: t.pool_waiting) or 0.0) >= THRESHOLDS.pool_waiting:
        return None
    if d.query_ms < THRESHOLDS.slow_db_ms or d.query_ms < THRESHOLDS.db_hold_share * d.p50:
        return None
    evidence = (
        f"{d.active:.0f} of {d.whose} running a query on average, so by Little's law each request spends "
        f"{d.query_ms:.0f} ms in queries ({d.active:.1f} / {d.rps:.0f} req/s) of its p50 {ms(d.p50)}; worker CPU "
        f"{w.app_cpu_mean:.0f}%"
    )
    waiting = w.users_waiting_share
    if waiting is not None and waiting < THRESHOLDS.demand_share:
        # The users spend most of their time between requests: the app has room, and the queries are where a
        # request's time goes, not what limits this load.
        return Finding(
            id="db-bound",
            severity="info",
            title="Most of each request's time is spent in the database",
            evidence=f"{evidence}; the users wait for answers {waiting:.0%} of the time, so this load is not held "
            "back by it",
            advice="Faster queries make each answer faster (pg_stat_statements, EXPLAIN ANALYZE); under a heavier "
            "load this is what would limit the app.",
            signals=["database", "load", "process"],
        )
    return Finding(
        id="db-bound",
        severity="warning",
        title="The database is the bottleneck: its backends are busy while the app waits",
        evidence=evidence,
        advice="Look at the slow queries (pg_stat_statements, EXPLAIN ANALYZE), and at locks they wait on; more "
        "workers or a bigger pool will not help.",
        signals=["database", "load", "process"],
    )


def database_queue(w: Window) -> bool:
    """Requests queue for the database or for the app's connections to it (so not for something else in the app)."""
    return pool_exhausted(w) is not None or db_bound(w) is not None


NODELAY_ADVICE = (
    "uvicorn --workers N creates its socket without IPPROTO_TCP, so TCP_NODELAY is never set (uvicorn #3149). "
    "Serve with `python -m loadtui.serve app:app --workers N`, or a socket made with IPPROTO_TCP."
)


def nodelay_delay(w: Window) -> Finding | None:
    """About 40 ms added to each answer on kept-alive connections: the server's sockets lack TCP_NODELAY.

    Measured directly by the probe (probe.py): on a fresh connection, timed to the status line, it takes a
    millisecond or two; over a kept-alive connection, timed to the end of the body, Nagle's algorithm holds the body
    until the client's delayed ACK (~40 ms). Whatever the endpoints cost, that gap is the server's. Without probes:
    every second's p50 sits on the floor with several workers at idle CPU (stock uvicorn --workers N).
    """
    low, high = THRESHOLDS.nodelay_low_ms, THRESHOLDS.nodelay_high_ms
    kept = w.mean(lambda t: t.probe.kept_p50_ms if t.probe is not None else None)
    fresh = w.mean(lambda t: t.probe.p50_ms if t.probe is not None else None)
    if kept is not None and fresh is not None:
        if not (low <= kept <= high and fresh <= kept / 4):
            return None
        if w.p50 is None or w.p50 < low:
            # The probe proves the sockets lack TCP_NODELAY; the users' own latency shows their client is not held by
            # it (whether a client waits depends on how it sends and ACKs). A fact for other clients, not a problem.
            return Finding(
                id="nodelay-delay",
                severity="info",
                title="The server's sockets lack TCP_NODELAY; this load's requests were not delayed",
                evidence=f"probe requests took {ms(fresh)} on a fresh connection but {ms(kept)} over a kept-alive one, "
                f"while the users' p50 is {ms(w.p50)}: other clients (browsers, HTTP libraries that send headers and "
                "body apart) may wait ~40 ms per request",
                advice=NODELAY_ADVICE,
                signals=["probe", "load"],
            )
        return Finding(
            id="nodelay-delay",
            severity="warning",
            title="A 40 ms delay per request: the server's sockets lack TCP_NODELAY",
            evidence=f"probe requests took {ms(fresh)} on a fresh connection but {ms(kept)} over a kept-alive one "
            f"(to the end of the body), users' p50 {ms(w.p50)} with {w.config.workers} worker(s) — the Nagle + "
            "delayed-ACK floor, not your code",
            advice=NODELAY_ADVICE,
            signals=["probe"],
        )
    if w.config.workers < 2 or w.rps < THRESHOLDS.min_rps:
        return None
    p50s = [t.latency.p50 for t in w.ticks if t.latency.p50 is not None]
    if len(p50s) < len(w.ticks) or not p50s:
        return None
    if not all(low <= p <= high for p in p50s) or w.app_cpu_mean > THRESHOLDS.idle_cpu:
        return None
    return Finding(
        id="nodelay-delay",
        severity="warning",
        title="A 40 ms delay per request: multi-worker uvicorn without TCP_NODELAY",
        evidence=f"p50 between {min(p50s):.0f} and {max(p50s):.0f} ms every second with {w.config.workers} workers at "
        f"{w.app_cpu_mean:.0f}% CPU — the Nagle + delayed-ACK floor, not your code",
        advice=NODELAY_ADVICE,
        signals=["load", "process"],
    )


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
    users_now = w.last.users
    cutoff = users_now / THRESHOLDS.queueing_users_growth
    fewer = [
        t
        for t in history[: -len(w.ticks)]
        if 0 < t.users <= cutoff and t.latency.p50 is not None and t.rps >= THRESHOLDS.min_rps
    ]
    if not fewer or any(t.users < users_now for t in w.ticks):
        return None
    fewest = min(t.users for t in fewer)
    before = [t for t in fewer if t.users == fewest]
    users_before = statistics.fmean(t.users for t in before)
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


def queueing(w: Window, history: Sequence[Tick]) -> Finding | None:
    """Latency rises while throughput stays flat: requests queue; Little's law gives how many are in flight."""
    c = capacity(w, history)
    if c is None:
        return None
    return Finding(
        id="queueing",
        severity="warning",
        title="Requests are queueing: more users bring more latency, not more throughput",
        evidence=f"users {c.users_before:.0f} → {c.users_now:.0f}, req/s {c.rps_before:.0f} → {c.rps_now:.0f}, p50 "
        f"{c.p50_before:.0f} → {c.p50_now:.0f} ms; by Little's law {c.rps_now:.0f} req/s × {c.p50_now / 1000:.2f} s "
        f"≈ {c.in_flight:.0f} requests in flight",
        advice="The app is at its capacity: throughput ≈ concurrency / latency, so more users only wait longer. The other "
        "findings name what caps it (workers, pool, database, event loop).",
        signals=["load"],
    )


def serialized_without_helper(w: Window, history: Sequence[Tick]) -> Finding | None:
    """For apps without loadtui's helper (no loop lag): each worker serves one request at a time while idle.

    A worker whose loop is blocked serves requests one after another: its throughput is 1 / service time at any
    number of users. The service time is what a request took with about one user per worker (the start of a ramp);
    if throughput stayed there while users grew, and worker CPU is low, the loop is blocked. (Any server at capacity
    looks serialized from outside; only a measurement at about one user per worker tells them apart.)
    """
    workers = w.last.workers
    if not workers or any(x.loop_lag_ms is not None for x in workers) or w.app_cpu_mean > THRESHOLDS.idle_cpu:
        return None
    if any((x.threads or 0) >= THRESHOLDS.threadpool_threads for x in workers):
        return None  # a full threadpool looks the same from outside; the thread count tells them apart
    d = w.database
    if database_queue(w) or (d is not None and d.active > len(workers)):
        # The database (or the pool in front of it) is the queue; and a blocked loop runs one query at a time.
        return None
    c = capacity(w, history)
    if c is None or c.users_before / len(workers) > THRESHOLDS.serial_per_worker:
        return None
    per_worker = c.rps_now / len(workers)
    at_once = per_worker * c.p50_before / 1000  # requests a worker serves at once: throughput × service time
    if at_once > THRESHOLDS.serial_per_worker:
        return None
    return Finding(
        id="event-loop-blocked",
        severity="critical",
        title="The event loop looks blocked: each worker serves one request at a time",
        evidence=f"no loop-lag figures from this app (it does not use loadtui's helper); {per_worker:.1f} req/s per worker ≈ "
        f"1 / {c.p50_before:.0f} ms service time (measured at {c.users_before:.0f} user(s)), unchanged while users "
        f"went {c.users_before:.0f} → {c.users_now:.0f} and p50 {c.p50_before:.0f} → {c.p50_now:.0f} ms; worker CPU "
        f"{w.app_cpu_mean:.0f}%",
        advice="A blocking call runs inside `async def`. Press p for a stack dump of the workers (py-spy), make the call "
        "async or the endpoint plain `def`; add `loadtui.appstats.instrument(app)` to measure the loop lag directly.",
        signals=["load", "process"],
    )


RULES: tuple[Callable[[Window], Finding | None], ...] = (
    measurement_disturbed,
    machine_saturated,
    loadgen_saturated,
    db_connection_limit,
    event_loop_blocked,
    threadpool_saturated,
    lock_contention,
    pool_exhausted,
    db_bound,
    too_few_workers,
    worker_imbalance,
    nodelay_delay,
)
"""Rules over the window (the rules over the whole history follow in :func:`evaluate`)."""

ORDER: tuple[FindingId, ...] = (
    "measurement-disturbed",
    "machine-saturated",
    "loadgen-saturated",
    "db-connection-limit",
    "event-loop-blocked",
    "threadpool-saturated",
    "lock-contention",
    "pool-exhausted",
    "app-concurrency-limit",
    "db-bound",
    "too-few-workers",
    "worker-imbalance",
    "nodelay-delay",
    "queueing",
)
RANK: dict[str, int] = {fid: i for i, fid in enumerate(ORDER)}
"""The one order findings are shown in (a consequence after every cause): the dashboard, the log and headless."""


@dataclass(frozen=True)
class Relation:
    """While `cause` holds, each of `consequences` is what it looks like from inside the app: it is marked
    `consequence_of` the cause, listed after it, and not shown without it."""

    cause: FindingId
    consequences: tuple[FindingId, ...]
    first: str
    """What to do first, as the consequence's advice begins: "A consequence of {first}."""
    when: Callable[[Window], bool] | None = None
    """An extra condition on the window (None: whenever both hold)."""
    demote: bool = False
    """The consequence is shown as information only (its cause is the problem)."""

    @property
    def cause_text(self) -> str:
        """The cause in words, without what to do: "the workers' full cores (too-few-workers)"."""
        return self.first.split(":")[0]


def relation(consequence: Finding) -> Relation | None:
    """The relation that made `consequence` one (None for a root cause)."""
    return next(
        (r for r in RELATIONS if r.cause == consequence.consequence_of and consequence.id in r.consequences),
        None,
    )


def _queries_fill_cores(w: Window) -> bool:
    """PostgreSQL (most of "the rest") uses more of the cores than the app and the load generator together."""
    use = w.cores_used
    return use is not None and use.other > use.app + use.loadgen


CAUSES_OF_QUEUEING: tuple[FindingId, ...] = (
    "event-loop-blocked",
    "threadpool-saturated",
    "pool-exhausted",
    "app-concurrency-limit",
    "db-bound",
    "db-connection-limit",
)

RELATIONS: tuple[Relation, ...] = (
    # Checked in this order; a finding follows from the first relation whose cause holds.
    Relation(
        "db-bound",
        ("machine-saturated",),
        "the queries themselves (db-bound): PostgreSQL uses most of the cores",
        when=_queries_fill_cores,
        demote=True,
    ),
    Relation(
        "machine-saturated",
        ("pool-exhausted", "threadpool-saturated", "queueing", "db-bound", "lock-contention", "app-concurrency-limit"),
        "the machine being out of CPU (machine-saturated): fix that first",
    ),
    Relation(
        "too-few-workers",
        ("pool-exhausted", "queueing"),
        "the workers' full cores (too-few-workers): add workers first",
    ),
    Relation(
        "lock-contention",
        ("db-bound", "pool-exhausted", "app-concurrency-limit", "queueing"),
        "requests waiting on the same rows (lock-contention): fix that first",
    ),
    *(Relation(cause, ("queueing",), f"{cause}, which caps the throughput") for cause in CAUSES_OF_QUEUEING),
)
"""Which finding follows from which: one table, read by the diagnosis, the front ends and the report alike."""

CONSEQUENCE = "A consequence of "
"""How the advice of a finding that follows from another begins."""


def relate(found: list[Finding], held: set[str], w: Window | None) -> list[Finding]:
    """`found` with each finding that follows from a cause in `held` marked (`consequence_of`, advice), in order.

    `held`: the ids that hold now (for the diagnoser: active, or seen in its last seconds, so the marks do not flip
    from second to second). A relation with a condition needs the window `w`. Relations are taken in table order;
    a finding follows from one cause at most, and never from its own consequence.
    """
    ids = {f.id for f in found}
    cause_of: dict[str, Relation] = {}
    for r in RELATIONS:
        if r.cause not in held or (r.when is not None and (w is None or not r.when(w))):
            continue
        for fid in r.consequences:
            if fid in ids and fid not in cause_of and fid != r.cause:
                mutual = cause_of.get(r.cause)
                if mutual is None or mutual.cause != fid:
                    cause_of[fid] = r
    out = [
        dataclasses.replace(
            f,
            consequence_of=rel.cause,
            advice=f"{CONSEQUENCE}{rel.first}. {f.advice}",
            severity="info" if rel.demote else f.severity,
        )
        if (rel := cause_of.get(f.id)) is not None
        else f
        for f in found
    ]
    return sorted(out, key=order)


def order(f: Finding) -> tuple[bool, int]:
    """Where a finding is listed: root causes before their consequences, then in :data:`ORDER`."""
    return f.consequence_of is not None, RANK.get(f.id, len(RANK))


def probe_floor(ticks: Sequence[Tick]) -> float | None:
    """The fastest probe among `ticks` (the per-second medians), or None without probes."""
    return min((t.probe.p50_ms for t in ticks if t.probe is not None and t.probe.p50_ms is not None), default=None)


def _window(ticks: Sequence[Tick], config: RunConfig, probe_base: float | None, baseline: Sequence[Tick]) -> Window:
    size = int(THRESHOLDS.window_s)
    base = probe_base if probe_base is not None else probe_floor(ticks)
    return Window(ticks[-size:], config, probe_base=base or 0.0, history=[*baseline, *ticks])


def findings(w: Window) -> list[Finding]:
    """Every rule once over the window, unrelated (see :func:`relate`) and unordered."""
    found = [f for rule in RULES if (f := rule(w)) is not None]
    history = w.history
    if not any(f.id == "event-loop-blocked" for f in found):
        fallback = serialized_without_helper(w, history)
        if fallback is not None:
            found.append(fallback)
    for rule in (app_concurrency_limit, queueing):
        f = rule(w, history)
        if f is not None:
            found.append(f)
    if any(f.id == "machine-saturated" for f in found) and all(
        f.severity == "info" for f in found if f.id not in ("machine-saturated", "measurement-disturbed")
    ):
        # A closed-loop test with no think time fills whatever cores it is given: with nothing slow beside it, a
        # busy machine is a fact worth showing, not a problem.
        found = [dataclasses.replace(f, severity="info") if f.id == "machine-saturated" else f for f in found]
    return found


def evaluate(
    ticks: Sequence[Tick], config: RunConfig, probe_base: float | None = None, baseline: Sequence[Tick] = ()
) -> list[Finding]:
    """Findings whose condition holds over the last window of `ticks` (no hysteresis), related and in order.

    `probe_base`: the fastest probe of the whole session (default: of `ticks`); `baseline`: earlier seconds with the
    fewest users, kept after `ticks` forgot them (the queueing rules compare with them).
    """
    if len(ticks) < THRESHOLDS.window_s:
        return []
    w = _window(ticks, config, probe_base, baseline)
    found = findings(w)
    return relate(found, {f.id for f in found}, w)


BASELINE_S = 5
"""Seconds at the fewest users the diagnoser keeps beyond its history (the first step lasts two)."""

FAULT_HOLD_S = 5.0
"""Seconds after a fault is over (the database back, a worker replaced) whose figures still carry its errors: the
pools reconnect, retried requests finish. The diagnosis judges none of them."""

FAULTS: dict[str, str] = {"db-lost": "db", "app-exited": "app"}
"""Faults that last until their end event (by what they take down)."""
FAULT_ENDS: dict[str, str] = {"db-back": "db", "app-started": "app"}
RESETS = ("applied", "workers")
"""Events after which the old seconds prove nothing: a configuration applied by restart, workers changed live."""
BRIEF_FAULTS = ("worker-exited", "worker-started", "loadgen-exited")
"""Events that disturb the figures for a moment (a worker dies and is replaced; the load generator is replaced)."""


class Diagnoser:
    """Keeps recent ticks and turns raw rule results into stable findings with start and end events.

    Stable in three ways: a finding starts after its condition held `start_after_s` seconds and ends after it was gone
    `clear_after_s` (hysteresis); a consequence is marked as such while its cause holds or was seen in the last
    `clear_after_s` seconds, and is not shown before its cause is (so the order does not flip); and while a fault
    lasts and for :data:`FAULT_HOLD_S` after it, nothing new is judged (its errors are the fault's, not a limit's).
    """

    def __init__(self, history: int = 60) -> None:
        self._ticks: deque[Tick] = deque(maxlen=history)
        self._streak: dict[str, int] = {}
        self._gone: dict[str, int] = {}
        self._seen: dict[str, float] = {}
        """When each id last held (session seconds)."""
        self._active: dict[str, Finding] = {}
        self._shown: set[str] = set()
        self._baseline: list[Tick] = []
        """The seconds with the fewest users since the last reset (see :meth:`_keep_baseline`)."""
        self._probe_base: float | None = None
        """The fastest probe of the session: the network's share, kept across resets (the network does not change)."""
        self._faults: set[str] = set()
        """What is down now ("db", "app")."""
        self._quiet_until = float("-inf")
        self.held_by_fault: str | None = None
        """The fault the last second was not judged for (its event's message), or None."""

    @property
    def active(self) -> dict[str, Finding]:
        """Findings shown now, by id."""
        return {fid: f for fid, f in self._active.items() if fid in self._shown}

    def reset(self) -> None:
        """Forget the past (after a restart or a configuration change the old seconds prove nothing)."""
        self._ticks.clear()
        self._streak.clear()
        self._baseline.clear()

    def note(self, kind: str, t: float, message: str = "", restarted: bool = False) -> None:
        """An event of the session: a change of configuration starts the judging afresh; faults and their ends hold
        it (see the class docstring). The session and an offline replay of its log call it alike."""
        if kind in RESETS:
            self.reset()
            return
        ended = FAULT_ENDS.get(kind)
        if kind in FAULTS:
            self._faults.add(FAULTS[kind])
        elif ended is not None and ended in self._faults:
            self._faults.discard(ended)
        elif not (kind in BRIEF_FAULTS or (kind == "db-started" and restarted)):
            return
        self._quiet_until = max(self._quiet_until, t + FAULT_HOLD_S)
        self.held_by_fault = message or kind

    def _keep_baseline(self, tick: Tick) -> None:
        """Keep the seconds with the fewest users (the first step's), however long ago, up to BASELINE_S of them."""
        if tick.users <= 0 or tick.latency.p50 is None or tick.rps < THRESHOLDS.min_rps:
            return
        if not self._baseline or tick.users < self._baseline[0].users:
            self._baseline = [tick]
        elif tick.users == self._baseline[0].users and len(self._baseline) < BASELINE_S:
            self._baseline.append(tick)

    def update(self, tick: Tick, config: RunConfig) -> tuple[list[Finding], list[Finding], list[str]]:
        """Add a second; return (findings shown, findings shown from now on, ids no longer shown)."""
        if self._faults or tick.t < self._quiet_until:
            # The fault's seconds prove nothing about the app: judge none of them, and start afresh after it.
            self._ticks.clear()
            self._streak.clear()
            return sorted(self.active.values(), key=order), [], []
        self.held_by_fault = None
        self._ticks.append(tick)
        fastest = probe_floor([tick])
        if fastest is not None:
            self._probe_base = fastest if self._probe_base is None else min(self._probe_base, fastest)
        old = [t for t in self._baseline if t.t < self._ticks[0].t]  # the ones the history forgot
        w = (
            _window(list(self._ticks), config, self._probe_base, old)
            if len(self._ticks) >= THRESHOLDS.window_s
            else None
        )
        found = findings(w) if w is not None else []
        self._keep_baseline(tick)
        for f in found:
            self._seen[f.id] = tick.t
        recent = {fid for fid, at in self._seen.items() if tick.t - at < THRESHOLDS.clear_after_s}
        raw = {f.id: f for f in relate(found, recent | set(self._active), w)}
        for fid, finding in raw.items():
            self._streak[fid] = self._streak.get(fid, 0) + 1
            self._gone.pop(fid, None)
            if fid in self._active or self._streak[fid] >= THRESHOLDS.start_after_s:
                self._active[fid] = finding  # started, or fresh evidence
        for streaking in list(self._streak):
            if streaking not in raw:
                self._streak.pop(streaking)
        for active_id in list(self._active):
            if active_id not in raw:
                self._gone[active_id] = self._gone.get(active_id, 0) + 1
                if self._gone[active_id] >= THRESHOLDS.clear_after_s:
                    del self._active[active_id]
                    self._gone.pop(active_id)
        for f in list(self._active.values()):
            cause = f.consequence_of
            if cause is not None and cause not in self._active and cause in raw:
                self._active[cause] = raw[cause]  # what explains a finding shown now is shown with it
        # A new consequence waits for its cause (still starting, or a blip that may not come back).
        shown = {
            fid
            for fid, f in self._active.items()
            if f.consequence_of is None or f.consequence_of in self._active or fid in self._shown
        }
        started = sorted((self._active[fid] for fid in shown - self._shown), key=order)
        ended = sorted(self._shown - shown, key=lambda fid: RANK.get(fid, len(RANK)))
        self._shown = shown
        return sorted(self.active.values(), key=order), started, ended
