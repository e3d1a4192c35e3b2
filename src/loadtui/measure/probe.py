"""Probe requests: how long the app takes to answer a request that runs none of its code.

A few times a second, on a fresh connection, loadtui asks the app for a path it does not route. The framework
answers 404 without running an endpoint, so on a healthy server the answer takes a millisecond or two. The time is
measured to the status line (the first bytes of the answer), so Nagle's delay on the body does not count.

What the probe says, and why it holds for any ASGI app:
- **Event loop blocked** (a synchronous call inside `async def`): the probe's accept, read and answer are callbacks
  of the same loop, so it waits in line with every user request: its time climbs towards theirs.
- **Waiting inside the app** (a semaphore, a rate-limited dependency, a full threadpool, a small database pool):
  the loop is free, so the probe is answered at once while the users' requests wait: their latency is far above it.
- **No TCP_NODELAY** (stock `uvicorn --workers N`): a burst of probes a quarter second goes over one kept-alive
  connection, each timed to the end of its body. The server writes headers and body apart; without TCP_NODELAY,
  Nagle's algorithm holds the body until the client's delayed ACK, about 40 ms, while the fresh-connection probe
  (timed to the status line) stays at a millisecond or two.

The probe is outside Locust, so its requests never enter the users' statistics. At most `MAX_OUTSTANDING` probes are
in flight; when the app is stuck, the age of the oldest unanswered one is the lower bound of how long a probe waits.
"""

from __future__ import annotations

import http.client
import statistics
import threading
import time
import uuid
from collections.abc import Callable
from urllib.parse import urlsplit

from loadtui.model import ProbeStats

INTERVAL_S = 0.25
"""A probe every quarter second (and a burst on the kept-alive connection): about 16 requests/s, negligible beside
any load worth diagnosing."""
MAX_OUTSTANDING = 3
"""Probes in flight at once; when the app is stuck, no more are sent until one is answered."""
TIMEOUT_S = 30.0
"""A probe unanswered this long is counted as failed (its age was reported every second until then)."""
KEPT_BURST = 3
"""Probes per burst on the kept-alive connection; all but the first are timed."""
PATH = "/loadtui-probe-"
"""The probe's path, followed by a random part: an app routes it only with a catch-all route."""


class Prober:
    """Sends probe requests to `base_url` on a thread; :meth:`take` returns each second's figures."""

    def __init__(
        self,
        base_url: str,
        clock: Callable[[], float] = time.monotonic,
        connect: Callable[[], http.client.HTTPConnection] | None = None,
        interval: float = INTERVAL_S,
    ) -> None:
        parts = urlsplit(base_url)
        self._https = parts.scheme == "https"
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or (443 if self._https else 80)
        self._prefix = parts.path.rstrip("/") + PATH + uuid.uuid4().hex[:8]
        self._clock = clock
        self._interval = interval
        self._connect = connect or self._connection
        self._lock = threading.Lock()
        self._answered: list[float] = []
        """Milliseconds of the probes answered since the last take."""
        self._kept: list[float] = []
        """Milliseconds of the kept-alive probes (to the end of the body) since the last take."""
        self._failed = 0
        self._sent = 0
        self._pending: dict[int, float] = {}
        """Start time of each probe in flight, by number."""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start probing (daemon threads: they never keep loadtui alive)."""
        self._thread = threading.Thread(target=self._schedule, name="loadtui-probe", daemon=True)
        self._thread.start()
        threading.Thread(target=self._keep_alive, name="loadtui-probe-kept", daemon=True).start()

    def stop(self) -> None:
        """Stop sending; probes in flight end by their timeout."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2)

    def _schedule(self) -> None:
        number = 0
        while not self._stop.wait(self._interval):
            with self._lock:
                if len(self._pending) >= MAX_OUTSTANDING:
                    continue
                number += 1
                self._pending[number] = self._clock()
                self._sent += 1
            threading.Thread(target=self._probe, args=(number,), name="loadtui-probe-request", daemon=True).start()

    def _connection(self) -> http.client.HTTPConnection:
        cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        return cls(self._host, self._port, timeout=TIMEOUT_S)

    def _keep_alive(self) -> None:
        """Bursts of probes over one connection, timed to the end of the body (reconnects after an error).

        After an idle gap the client's TCP stack acknowledges at once (quick-ACK mode), hiding the delay; back to
        back, as real clients send, it delays its ACKs. So each burst's first answer only warms the connection up.
        """
        conn: http.client.HTTPConnection | None = None
        while not self._stop.wait(self._interval):
            conn = conn or self._connect()
            try:
                for i in range(KEPT_BURST):
                    start = self._clock()
                    conn.request("GET", f"{self._prefix}/kept")
                    response = conn.getresponse()
                    response.read()
                    if i > 0:
                        with self._lock:
                            self._kept.append((self._clock() - start) * 1000)
                    if response.will_close:
                        raise http.client.HTTPException("the server closes kept-alive connections")
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = None
        if conn is not None:
            conn.close()

    def _probe(self, number: int) -> None:
        conn = self._connect()
        ok = False
        try:
            conn.request("GET", f"{self._prefix}/{number}", headers={"Connection": "close"})
            conn.getresponse()  # the status line and headers: the app has answered
            ok = True
        except (OSError, http.client.HTTPException):
            pass
        finally:
            end = self._clock()
            conn.close()
            with self._lock:
                start = self._pending.pop(number, end)
                if ok:
                    self._answered.append((end - start) * 1000)
                else:
                    self._failed += 1

    def take(self) -> ProbeStats:
        """The probes of the last second: answered ones, failures, and the age of the oldest still waiting."""
        with self._lock:
            answered, self._answered = self._answered, []
            kept, self._kept = self._kept, []
            failed, self._failed = self._failed, 0
            sent, self._sent = self._sent, 0
            now = self._clock()
            oldest = max((now - s for s in self._pending.values()), default=None)
        return ProbeStats(
            sent=sent,
            answered=len(answered),
            failed=failed,
            p50_ms=round(statistics.median(answered), 2) if answered else None,
            max_ms=round(max(answered), 2) if answered else None,
            waiting_ms=round(oldest * 1000, 2) if oldest is not None else None,
            kept_p50_ms=round(statistics.median(kept), 2) if kept else None,
        )
