"""Every number the rules use, in one table: each a documented field of :class:`Thresholds`."""

from __future__ import annotations

from dataclasses import dataclass


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
    backlog_kept_up: float = 0.95
    """With `--rate`: arrivals finished at this share of the rate or more = the app keeps up (the sweep's knee too)."""
    backlog_growth_share: float = 0.5
    """... less, and the arrivals in flight grew by this share of the unfinished ones (rate − finished, a second) or
    more over the window, or some were dropped at --max-in-flight: a backlog."""
    backlog_min_growth: int = 5
    """... by this many at least (a level of 1-2 in flight jitters by that much)."""
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
