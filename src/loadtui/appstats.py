"""Per-worker statistics for any ASGI app, in two lines (DESIGN 3.4).

    from loadtui.appstats import instrument
    instrument(app, pool=lambda: pool)      # pool: a psycopg_pool pool, or None

When loadtui runs the app it sets ``LOADTUI_STATS_DIR``; each worker process then writes, about once a second, a
small JSON record to ``$LOADTUI_STATS_DIR/<pid>.json`` (written to a temporary name and renamed, so a reader never
sees half a record): requests in flight, requests finished, event-loop lag, and the pool's statistics. A file per pid
gives one row per worker for any number of workers, costs the app one small write a second, and needs no port.

For an app loadtui does not start (a container, a staging host), ``LOADTUI_STATS_URL=udp://HOST:PORT`` sends the
same record as one UDP datagram a second to ``loadtui --stats-listen HOST:PORT``, with what loadtui cannot measure
from afar: the worker's own CPU percent and resident memory, its pid and host name. With ``LOADTUI_STATS_TOKEN`` set
(on both sides) each datagram carries an HMAC-SHA256 of its body. A lost datagram costs one second of one worker.
Without either variable, :func:`instrument` does nothing at all.

This module is imported by app workers: it must import nothing heavy (no Textual, no Locust, no psutil).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import math
import os
import socket
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

STATS_DIR_ENV = "LOADTUI_STATS_DIR"
"""Environment variable naming the directory workers publish into."""

STATS_URL_ENV = "LOADTUI_STATS_URL"
"""`udp://HOST:PORT`: where workers of an app loadtui did not start send their records."""

STATS_TOKEN_ENV = "LOADTUI_STATS_TOKEN"  # noqa: S105 (the variable's name, not a secret)
"""A secret shared by the app and loadtui: datagrams are signed with it, and unsigned ones are refused."""

WIRE_MAGIC = b"LT1"
"""First bytes of a datagram: the format's name and version."""

PUBLISH_INTERVAL = 1.0
"""Seconds between two records of a worker."""

LAG_PROBE_INTERVAL = 0.1
"""The lag probe sleeps this long and measures how late it wakes up: the event loop's lag."""

_Scope = MutableMapping[str, Any]
_Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
_Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
_ASGIApp = Callable[[_Scope, _Receive, _Send], Awaitable[None]]


def encode(record: dict[str, Any], token: str | None) -> bytes:
    """A datagram: `LT1 <hex HMAC-SHA256 of the body, or ->` then the JSON body."""
    body = json.dumps(record, separators=(",", ":")).encode()
    mac = hmac.new(token.encode(), body, hashlib.sha256).hexdigest().encode() if token else b"-"
    return WIRE_MAGIC + b" " + mac + b" " + body


class WireError(ValueError):
    """A datagram that is not a record: malformed, or not signed with the expected token."""

    def __init__(self, message: str, *, unauthenticated: bool = False) -> None:
        super().__init__(message)
        self.unauthenticated = unauthenticated


def decode(datagram: bytes, token: str | None) -> dict[str, Any]:
    """The record in `datagram`; WireError if it is malformed or (with `token`) not signed with it."""
    parts = datagram.split(b" ", 2)
    if len(parts) != 3 or parts[0] != WIRE_MAGIC:
        raise WireError("not a loadtui stats datagram")
    _, mac, body = parts
    if token:
        expected = hmac.new(token.encode(), body, hashlib.sha256).hexdigest().encode()
        if not hmac.compare_digest(mac, expected):
            raise WireError("bad or missing signature", unauthenticated=True)
    try:
        record = json.loads(body, parse_float=_finite, parse_constant=_no_constant)
    except (ValueError, RecursionError):  # RecursionError: nested deeper than any record is
        raise WireError("the body is not JSON of finite numbers") from None
    if not isinstance(record, dict):
        raise WireError("the body is not a JSON object")
    return record


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999 reads as infinity
        raise ValueError(f"{text} is not a finite number")
    return value


def _no_constant(text: str) -> Any:
    raise ValueError(f"{text} is not a number a record may hold")


def parse_stats_url(url: str) -> tuple[str, int]:
    """`udp://HOST:PORT` as (host, port); ValueError naming the expected form."""
    rest = url.removeprefix("udp://")
    host, _, port = rest.rpartition(":")
    if not url.startswith("udp://") or not host or not (port.isascii() and port.isdigit()) or not 0 < int(port) < 65536:
        raise ValueError(f"{STATS_URL_ENV}={url!r}: expected udp://HOST:PORT")
    return host.strip("[]"), int(port)


class Sender:
    """Sends this worker's records over UDP, with the figures loadtui cannot measure from another host."""

    def __init__(self, url: str, token: str | None) -> None:
        host, port = parse_stats_url(url)
        info = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0]
        self._address = info[4]
        self._socket = socket.socket(info[0], socket.SOCK_DGRAM)
        self._socket.setblocking(False)
        self._token = token
        self._host = socket.gethostname()
        self._cpu = (time.monotonic(), time.process_time())
        self._page = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
        self._seq = 0

    def _cpu_percent(self) -> float:
        now = (time.monotonic(), time.process_time())
        wall, cpu = now[0] - self._cpu[0], now[1] - self._cpu[1]
        self._cpu = now
        return round(100.0 * cpu / wall, 1) if wall > 0 else 0.0

    def _rss(self) -> int | None:
        try:
            with open("/proc/self/statm", "rb") as f:
                return int(f.read().split()[1]) * self._page
        except (OSError, ValueError, IndexError):
            return None

    def send(self, record: dict[str, Any]) -> None:
        """Send one record; a full buffer or an unreachable port loses it (never the app's problem).

        `seq` counts this worker's records: signed with the body, it lets the receiver refuse a replayed datagram."""
        self._seq += 1
        full = {
            **record,
            "host": self._host,
            "cpu_percent": self._cpu_percent(),
            "rss_bytes": self._rss(),
            "seq": self._seq,
        }
        with contextlib.suppress(OSError):
            self._socket.sendto(encode(full, self._token), self._address)

    def close(self) -> None:
        self._socket.close()


class WorkerStats:
    """Counters of one worker process; the publisher writes them out (and sends them, for a remote loadtui)."""

    def __init__(self, directory: Path | None, pool: Callable[[], Any] | None, sender: Sender | None = None) -> None:
        self.directory = directory
        self.sender = sender
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
        """Write the record atomically (and send it, when a remote loadtui listens)."""
        record = self.record()
        if self.sender is not None:
            self.sender.send(record)
        if self.directory is None:
            return
        path = self.directory / f"{os.getpid()}.json"
        tmp = self.directory / f".{os.getpid()}.tmp"
        tmp.write_text(json.dumps(record))
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
        if self.sender is not None:
            self.sender.close()
        if self.directory is None:
            return
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
    url = os.environ.get(STATS_URL_ENV)
    if not directory and not url:
        return
    app.add_middleware(_InFlight)
    inner = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(app_: Any) -> AsyncIterator[Any]:
        global _current
        sender = None
        if url:
            try:
                sender = Sender(url, os.environ.get(STATS_TOKEN_ENV) or None)
            except (ValueError, OSError) as exc:
                # The figures are loadtui's business, never a reason for the app not to start.
                print(f"loadtui.appstats: not sending figures: {exc}", file=sys.stderr, flush=True)
        stats = WorkerStats(Path(directory) if directory else None, pool, sender)
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
