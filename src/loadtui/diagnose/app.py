"""Rules about where requests wait inside the app: a fixed concurrency limit, a full threadpool, the missing
TCP_NODELAY, a queue, and a loop that looks blocked from outside (apps without the helper).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence

from loadtui.diagnose.database import (
    database_queue,
)
from loadtui.diagnose.thresholds import THRESHOLDS
from loadtui.diagnose.window import Window, capacity, once
from loadtui.model import Finding, Signal, Tick
from loadtui.units import ms


def app_concurrency_limit(w: Window, history: Sequence[Tick]) -> Finding | None:
    """Requests queue inside the app for something that admits a fixed number at once, while the loop is free.

    A semaphore, a lock, a rate-limited or connection-capped dependency: throughput stays flat as users grow (the
    queueing evidence), the CPU idles, and the probe is answered at once (so the event loop is not blocked). What is
    left once the threadpool, the app's database pool and the database itself are ruled out is the app's own limit.
    """
    probe = w.probe_wait
    if probe is None or w.p50 is None or probe > THRESHOLDS.probe_free_share * w.p50:
        return None
    if w.app_cpu_mean > THRESHOLDS.idle_cpu:
        return None
    # A full threadpool, the app's pool or the database as the limit rule it out: EXCLUDED_BY (relations.py).
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


@once
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


@once
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


NODELAY_ADVICE = (
    "uvicorn --workers N creates its socket without IPPROTO_TCP, so TCP_NODELAY is never set (uvicorn #3149). "
    "Serve with `python -m loadtui.serve app:app --workers N`, or a socket made with IPPROTO_TCP."
)


@once
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


def queueing(w: Window, history: Sequence[Tick]) -> Finding | None:
    """Latency rises while throughput stays flat: requests queue; Little's law gives how many are in flight.

    Users only (the closed model): with `--rate` the arrivals that could not be served pile up instead (`backlog`).
    """
    if w.config.open_model:
        return None
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


def backlog(w: Window) -> Finding | None:
    """With `--rate`: arrivals come faster than they finish, so those in flight and their latency grow without bound.

    The open model's queue: the app finishes fewer arrivals a second than the rate asks (below
    :attr:`~Thresholds.backlog_kept_up` of it over the window) while the arrivals in flight multiplied, or some were
    dropped at `--max-in-flight`. The latency from the intended start grows with the wait, the service time does not.
    """
    opened = [t.open for t in w.ticks if t.open is not None]
    if len(opened) < len(w.ticks) or not opened:
        return None
    target = statistics.fmean(o.target_rate for o in opened)
    achieved = statistics.fmean(o.achieved_rate for o in opened)
    dropped = statistics.fmean(o.dropped_rps for o in opened)
    if target <= 0 or achieved >= THRESHOLDS.backlog_kept_up * target:
        return None
    first, last = opened[0].in_flight, opened[-1].in_flight
    # Unserved arrivals pile up at (rate - finished) a second: in flight grows by at least half of that.
    expected = (target - achieved) * (len(opened) - 1)
    growing = last - first >= max(THRESHOLDS.backlog_min_growth, THRESHOLDS.backlog_growth_share * expected)
    if not growing and dropped <= 0:
        return None
    services = [o.service.p50 for o in opened if o.service.p50 is not None]
    service = statistics.median(services) if services else None
    wait = f"p50 {ms(w.p50)} from the intended start" + (f" (service p50 {ms(service)})" if service else "")
    drops = f"; {dropped:.1f} arrivals/s dropped at --max-in-flight {w.config.max_in_flight}" if dropped > 0 else ""
    return Finding(
        id="backlog",
        severity="warning",
        title=f"The app cannot keep up with {target:g} req/s: arrivals pile up",
        evidence=f"asked {target:g}/s, finished {achieved:.1f}/s ({achieved / target:.0%}); in flight {first} → "
        f"{last} over {len(opened)} s; {wait}{drops}",
        advice="This rate is above what the app sustains: the wait grows for as long as it lasts. Lower it (s, S) to "
        "the rate it keeps up with, or fix what the other findings name; --vary rate=auto finds the sustainable rate.",
        signals=["load"],
    )
