"""Per-worker statistics for any ASGI app, in two lines (DESIGN 3.4).

    from loadtui.appstats import instrument
    instrument(app, pool=lambda: pool)      # pool: a psycopg_pool pool, or None

When loadtui runs the app it sets ``LOADTUI_STATS_DIR``; each worker process then writes, about once a second, a
small JSON record to ``$LOADTUI_STATS_DIR/<pid>.json`` (written to a temporary name and renamed, so a reader never
sees half a record): requests in flight, requests finished, event-loop lag, and the pool's statistics. A file per pid
gives one row per worker for any number of workers, costs the app one small write a second, and needs no port.
Without the variable, :func:`instrument` does nothing at all.

This module is imported by app workers: it must import nothing heavy (no Textual, no Locust, no psutil).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

STATS_DIR_ENV = "LOADTUI_STATS_DIR"
"""Environment variable naming the directory workers publish into."""

PUBLISH_INTERVAL = 1.0
"""Seconds between two records of a worker."""

LAG_PROBE_INTERVAL = 0.1
"""The lag probe sleeps this long and measures how late it wakes up: the event loop's lag."""

_Scope = MutableMapping[str, Any]
_Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
_Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
_ASGIApp = Callable[[_Scope, _Receive, _Send], Awaitable[None]]


class WorkerStats:
    """Counters of one worker process; the publisher writes them out."""

    def __init__(self, directory: Path, pool: Callable[[], Any] | None) -> None:
        self.directory = directory
        self.pool = pool
        self.in_flight = 0
        """HTTP requests being handled right now."""
        self.requests = 0
        """HTTP requests finished since the worker started."""
        self.counters: dict[str, int] = {}
        """Free-form counters an app may bump with :meth:`incr` (e.g. ``db_connect_errors``)."""
        self._lag_max = 0.0
        self._lag_last = 0.0
        self._busy_sum = 0.0
        self._busy_samples = 0
        self.threads_limit: int | None = None
        """Threads of the threadpool that runs sync endpoints (anyio's default limiter), once seen."""

    def sample_threads(self) -> None:
        """Count the threadpool's busy threads now (from the event loop, where anyio's limiter is reachable)."""
        try:
            import anyio.to_thread  # loaded by Starlette already: costs nothing extra in an app

            limiter = anyio.to_thread.current_default_thread_limiter()
        except Exception:  # not an anyio app, or no limiter here: publish no figure rather than a wrong one
            return
        self.threads_limit = int(limiter.total_tokens)
        self._busy_sum += float(limiter.borrowed_tokens)
        self._busy_samples += 1

    def incr(self, name: str, by: int = 1) -> None:
        """Add to a named counter published with the worker's record."""
        self.counters[name] = self.counters.get(name, 0) + by

    def record(self) -> dict[str, Any]:
        """The record as published (and reset the lag maximum of the interval)."""
        pool_stats: dict[str, int] | None = None
        pool = self.pool() if self.pool is not None else None
        if pool is not None and hasattr(pool, "get_stats"):
            pool_stats = {str(k): int(v) for k, v in pool.get_stats().items()}
        record = {
            "pid": os.getpid(),
            "time": time.time(),
            "in_flight": self.in_flight,
            "requests": self.requests,
            "loop_lag_ms": round(self._lag_last * 1000, 2),
            "loop_lag_max_ms": round(self._lag_max * 1000, 2),
            "pool": pool_stats,
            "counters": dict(self.counters),
            "threads_busy": round(self._busy_sum / self._busy_samples, 2) if self._busy_samples else None,
            "threads_limit": self.threads_limit,
        }
        self._lag_max = 0.0
        self._busy_sum, self._busy_samples = 0.0, 0
        return record

    def publish(self) -> None:
        """Write the record atomically."""
        path = self.directory / f"{os.getpid()}.json"
        tmp = self.directory / f".{os.getpid()}.tmp"
        tmp.write_text(json.dumps(self.record()))
        os.replace(tmp, path)

    async def run(self) -> None:
        """Probe the loop's lag continuously and publish once per interval, until cancelled."""
        next_publish = time.monotonic()
        while True:
            started = time.monotonic()
            await asyncio.sleep(LAG_PROBE_INTERVAL)
            lag = max(0.0, time.monotonic() - started - LAG_PROBE_INTERVAL)
            self._lag_last = lag
            self._lag_max = max(self._lag_max, lag)
            self.sample_threads()
            if time.monotonic() >= next_publish:
                next_publish = time.monotonic() + PUBLISH_INTERVAL
                with contextlib.suppress(OSError):  # a vanished directory must never break the app
                    self.publish()

    def remove(self) -> None:
        """Delete this worker's record (on shutdown)."""
        with contextlib.suppress(OSError):
            (self.directory / f"{os.getpid()}.json").unlink()


_current: WorkerStats | None = None


def current() -> WorkerStats | None:
    """This worker's stats, or None when the app is not run by loadtui."""
    return _current


def incr(name: str, by: int = 1) -> None:
    """Bump a named counter of this worker; does nothing when the app is not run by loadtui."""
    if _current is not None:
        _current.incr(name, by)


class _InFlight:
    """Pure ASGI middleware counting HTTP requests in flight and finished."""

    def __init__(self, app: _ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: _Scope, receive: _Receive, send: _Send) -> None:
        stats = _current
        if scope["type"] != "http" or stats is None:
            await self.app(scope, receive, send)
            return
        stats.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            stats.in_flight -= 1
            stats.requests += 1


def instrument(app: Any, *, pool: Callable[[], Any] | None = None) -> None:
    """Publish this worker's statistics while `app` (FastAPI or Starlette) runs under loadtui.

    `pool` returns the app's connection pool (anything with psycopg_pool's `get_stats()`), or None; it is called at
    each publication, so a pool created in the lifespan is found once it exists.
    """
    directory = os.environ.get(STATS_DIR_ENV)
    if not directory:
        return
    app.add_middleware(_InFlight)
    inner = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(app_: Any) -> AsyncIterator[Any]:
        global _current
        stats = WorkerStats(Path(directory), pool)
        _current = stats
        task = asyncio.create_task(stats.run(), name="loadtui-appstats")
        try:
            async with inner(app_) as state:
                yield state
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            stats.remove()
            _current = None

    app.router.lifespan_context = lifespan
