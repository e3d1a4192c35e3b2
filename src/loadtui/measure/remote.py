"""Per-worker figures from apps loadtui did not start: the UDP receiver of `--stats-listen HOST:PORT`.

Workers instrumented with :func:`loadtui.appstats.instrument` and run with ``LOADTUI_STATS_URL=udp://HOST:PORT``
send one datagram a second (appstats.py has the format). The receiver keeps the latest record of each worker
(`host:pid`); :meth:`StatsListener.sample` turns them into the same rows local workers get, so the worker panel, the
log, the diagnosis and the report treat them alike. A worker silent for :data:`STALE_S` is shown stale, and after
:data:`GONE_S` it is gone. Datagrams that are malformed or not signed with ``LOADTUI_STATS_TOKEN`` are dropped and
counted, never raised: anyone who reaches the port can send anything.
"""

from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
import re
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from loadtui.appstats import WireError, decode
from loadtui.errors import UsageError
from loadtui.measure.collectors import AppStatsCollector, record_problem
from loadtui.model import PoolStats, ProcessStats, WorkerStats

STALE_S = 3.0
"""A worker silent this long is shown stale (its row stays, marked)."""

GONE_S = 10.0
"""A worker silent this long is gone (a worker that exited, a host that went away)."""

MAX_DATAGRAM = 65_507

MAX_WORKERS = 1024
"""Remote workers tracked at once: records of further new ones are dropped (and counted) until some are gone."""

REPLAY_WINDOW_S = 60.0
"""With a token, a record whose own time is further than this from the receiver's clock is refused (a replay of an
old datagram); within it, its `seq` must be above the worker's last one. Clocks of the two hosts must agree to it."""

HOST_NAME = re.compile(r"^[A-Za-z0-9._:\-\[\]]{1,255}$")
"""What a host name in a record may look like: no spaces, no control characters (they would reach the terminal)."""


def parse_listen(text: str, token: str | None) -> tuple[str, int]:
    """`--stats-listen HOST:PORT` as (host, port); a non-loopback address needs a token (UsageError otherwise)."""
    host, _, port = text.rpartition(":")
    host = host.strip("[]")
    if not host or not (port.isascii() and port.isdigit()) or not 0 < int(port) < 65536:
        raise UsageError(f"--stats-listen must be HOST:PORT, e.g. 127.0.0.1:9999 (got {text!r})")
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback and not token:
        raise UsageError(
            f"--stats-listen {text} accepts datagrams from other hosts: set LOADTUI_STATS_TOKEN (here and in the "
            "app) so only signed ones count, or listen on 127.0.0.1"
        )
    return host, int(port)


# pragma: no mutate start (the OS's own socket: tests/integration/test_remote_stats.py)
def _bound(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise UsageError(f"--stats-listen {host}:{port}: {exc.strerror}; choose another port") from None
    sock.settimeout(0.5)
    return sock


# pragma: no mutate end
class StatsListener:
    """Receives workers' records on a UDP port, in a thread of its own."""

    # pragma: no mutate start (a real socket and thread: tests/integration/test_remote_stats.py)
    def __init__(
        self, host: str, port: int, token: str | None, bind: Callable[[str, int], socket.socket] | None = None
    ) -> None:
        """`bind`: what opens the socket (default: a UDP socket bound to `host`:`port`; tests give a stand-in)."""
        self._socket = (bind or _bound)(host, port)
        self._token = token
        self._lock = threading.Lock()
        self._latest: dict[tuple[str, int], tuple[float, dict[str, Any]]] = {}
        self._seq: dict[tuple[str, int], tuple[int, float]] = {}
        """Each signed worker's last sequence number, and when it came."""
        self._joiners: dict[str, AppStatsCollector] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="loadtui-stats-listen", daemon=True)
        self.received = 0
        """Records accepted."""
        self.unauthenticated = 0
        """Datagrams dropped: not signed with the token."""
        self.malformed = 0
        """Datagrams dropped: not a record of the expected shape."""
        self.replayed = 0
        """Signed datagrams dropped: too old, or seen already (a replay)."""
        self.overflow = 0
        """Records of new workers dropped while :data:`MAX_WORKERS` were tracked."""
        self.cpu_seconds = 0.0
        """CPU the receiving thread used (the benchmark reads it)."""

    @property
    def address(self) -> tuple[str, int]:
        """Where it listens (the port, when 0 was asked for)."""
        host, port = self._socket.getsockname()[:2]
        return str(host), int(port)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(2)
        with contextlib.suppress(OSError):
            self._socket.close()

    def _run(self) -> None:
        started = time.thread_time()
        while not self._stop.is_set():
            try:
                data, _ = self._socket.recvfrom(MAX_DATAGRAM)
            except TimeoutError:
                continue
            except OSError:
                break
            try:
                self.receive(data)
            except Exception:  # never let one datagram end the receiver
                with self._lock:
                    self.malformed += 1
            self.cpu_seconds = time.thread_time() - started

    # pragma: no mutate end
    def receive(self, data: bytes, now: float | None = None) -> bool:
        """Take one datagram; False (and counted) if it was dropped."""
        try:
            record = decode(data, self._token)
        except WireError as exc:
            with self._lock:
                if exc.unauthenticated:
                    self.unauthenticated += 1
                else:
                    self.malformed += 1
            return False
        host, pid = record.get("host"), record.get("pid")
        numbers_ok = all(
            (k == "rss_bytes" and record.get(k) is None)
            or (isinstance(record.get(k), (int, float)) and not isinstance(record.get(k), bool) and record[k] >= 0)
            for k in ("cpu_percent", "rss_bytes")
        )
        if not (isinstance(host, str) and HOST_NAME.match(host) and isinstance(pid, int) and numbers_ok) or (
            record_problem(record) is not None
        ):
            with self._lock:
                self.malformed += 1
            return False
        # Staleness and rates go by this machine's clock: the sender's may be set differently.
        received = time.time() if now is None else now
        key = (host, pid)
        seq = record.get("seq")
        with self._lock:
            if self._token and not self._fresh(key, record, seq, received):
                self.replayed += 1
                return False
            if key not in self._latest and len(self._latest) >= MAX_WORKERS:
                self.overflow += 1
                return False
            self._latest[key] = (received, {**record, "time": received})
            if self._token and isinstance(seq, int):
                self._seq[key] = (seq, received)
            self.received += 1
        return True

    def _fresh(self, key: tuple[str, int], record: dict[str, Any], seq: Any, now: float) -> bool:
        """A signed record is taken once: its own time within the window, its sequence number above the last one."""
        sent = record.get("time")
        if not isinstance(sent, (int, float)) or abs(now - sent) > REPLAY_WINDOW_S:
            return False
        return isinstance(seq, int) and not isinstance(seq, bool) and seq > self._seq.get(key, (0, 0.0))[0]

    @property
    def dropped(self) -> int:
        """Every datagram dropped, whatever the reason."""
        return self.unauthenticated + self.malformed + self.replayed + self.overflow

    def sample(self, now: float | None = None) -> tuple[list[WorkerStats], list[PoolStats]]:
        """The remote workers' rows now, sorted by host and pid; the gone ones are forgotten."""
        now = time.time() if now is None else now
        with self._lock:
            for key in [k for k, (at, _) in self._latest.items() if now - at > GONE_S]:
                del self._latest[key]
            # A gone worker's last number is kept for the window: a replay of its datagrams is too old after it.
            for key in [k for k, (_, at) in self._seq.items() if now - at > REPLAY_WINDOW_S]:
                del self._seq[key]
            for host in set(self._joiners) - {h for h, _ in self._latest}:
                del self._joiners[host]  # each host's previous counters go with its last worker
            by_host: dict[str, dict[int, dict[str, Any]]] = {}
            for (host, pid), (_, record) in sorted(self._latest.items()):
                by_host.setdefault(host, {})[pid] = record
        rows: list[WorkerStats] = []
        pools: list[PoolStats] = []
        for host, records in by_host.items():
            joiner = self._joiners.setdefault(host, AppStatsCollector(Path("/nonexistent")))
            procs = {
                pid: ProcessStats(pid=pid, cpu_percent=float(r["cpu_percent"]), rss_bytes=int(r["rss_bytes"] or 0))
                for pid, r in records.items()
            }
            host_rows, host_pools = joiner.join(procs, records, now)
            rows += [dataclasses.replace(row, host=host) for row in host_rows]
            pools += host_pools
        return rows, pools
