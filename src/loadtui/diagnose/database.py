"""Rules about PostgreSQL and the app's connections to it: lock waits, a pool without a free connection, the
server out of connections, and the database holding most of each request's time.
"""

from __future__ import annotations

from loadtui.diagnose.loop import event_loop_blocked
from loadtui.diagnose.thresholds import DB_LIMIT_MESSAGES, THRESHOLDS
from loadtui.diagnose.window import Window, capacity, once
from loadtui.model import Finding
from loadtui.units import ms


@once
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


POOL_TITLE = "The connection pool is exhausted: requests queue for a connection"


@once
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


@once
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


@once
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


@once
def database_queue(w: Window) -> bool:
    """Requests queue for the database or for the app's connections to it (so not for something else in the app)."""
    return pool_exhausted(w) is not None or db_bound(w) is not None
