"""Shaping the load: the first step (one user per worker, the no-queue level the diagnosis compares with), and
spreading the users' keep-alive connections over the workers after the first ramp and after every change.

:class:`LoadShaper` reacts to the seconds the session measures (:meth:`LoadShaper.on_tick`); spreading runs on its
own thread and waits for seconds through the shaper, never by polling the session.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from loadtui.config import RunConfig
from loadtui.loadgen import LoadGen
from loadtui.model import Tick
from loadtui.session import rebalance
from loadtui.stack.supervisor import AppSupervisor

FIRST_STEP_S = 2.0
"""The load starts with one user per worker for this long, then ramps to the users asked for.

That first level measures what a request costs when nothing queues (the service time), which no later second can:
the diagnosis compares with it to tell a fixed limit (throughput flat, latency growing with the users) from a merely
slow dependency, on apps it knows nothing about — whatever spawn rate the user chose."""

SETTLED_TICKS = 3
"""Whole seconds on the new connections before a spread's shares are judged."""


class LoadShaper:
    """When the load goes where: the first step, the ramp after it, and spreading over the workers."""

    def __init__(
        self,
        *,
        config: Callable[[], RunConfig],
        paused: Callable[[], bool],
        app: Callable[[], AppSupervisor | None],
        loadgen: Callable[[], LoadGen | None],
        event: Callable[..., object],
        stop: threading.Event,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._config = config
        self._paused = paused
        self._app = app
        self._loadgen = loadgen
        self._event = event
        self._stop = stop
        self._clock = clock
        self._first_step_until: float | None = None
        """When the first step ends (clock time); None once over or overridden."""
        self._lock = threading.Lock()
        self._spread_after_ramp = False
        self._rebalancing = threading.Event()
        self._seen = threading.Condition()
        self._ticks = 0
        self._recent: deque[Tick] = deque(maxlen=SETTLED_TICKS)

    @property
    def rebalancing(self) -> bool:
        """True while the users' connections are being spread over the workers (figures are not steady yet)."""
        return self._rebalancing.is_set()

    def start(self, cfg: RunConfig, loadgen: LoadGen) -> None:
        """Send the first load: arrivals at their rate, or one user per worker for the first step, then the rest."""
        self._spread_after_ramp = (
            cfg.rebalance and cfg.workers >= 2 and cfg.users >= 2 * cfg.workers and not cfg.open_model
        )
        if cfg.open_model:
            loadgen.drive(cfg)
            self._event(
                "first-step",
                f"load by arrival rate: {cfg.rate:g} req/s ({cfg.arrivals}), at most {cfg.max_in_flight} in flight; "
                "latency counts from each arrival's intended start",
                users=0,
            )
            return
        if cfg.users <= 0:
            return
        first = max(1, cfg.workers)
        if first * 2 > cfg.users:
            loadgen.set_users(cfg.users, cfg.spawn_rate)
            return
        with self._lock:
            self._first_step_until = self._clock() + FIRST_STEP_S
        loadgen.set_users(first, float(first))
        self._event(
            "first-step",
            f"first {FIRST_STEP_S:g} s at {first} user(s), one per worker — what a request costs without a queue — "
            f"then {cfg.users} users at {cfg.spawn_rate:g}/s",
            users=first,
        )

    def end_first_step(self, *, now: bool = False) -> None:
        """Once the first step is over (or `now`: a change or a pause cuts it short), ramp to the users asked for."""
        with self._lock:
            if self._first_step_until is None or (not now and self._clock() < self._first_step_until):
                return
            self._first_step_until = None
            loadgen, cfg = self._loadgen(), self._config()
            if loadgen is not None and not self._paused() and cfg.users > 0:
                loadgen.drive(cfg)

    def changed(self) -> None:
        """A change started a segment: the first step is over, and the change spreads the connections itself."""
        self.end_first_step(now=True)
        self._spread_after_ramp = False

    def on_tick(self, tick: Tick) -> None:
        """A second was measured: end the first step when due, spread once the first ramp is done."""
        with self._seen:
            self._ticks += 1
            self._recent.append(tick)
            self._seen.notify_all()
        self.end_first_step()
        if self._spread_after_ramp and self._first_step_until is None and tick.users >= self._config().users:
            # A shared listening socket hands new connections to whichever worker wakes first, often the busiest:
            # one worker may get nearly all of them (small_pool, 2 workers: CPU 9% / 1%).
            self._spread_after_ramp = False
            self.start_rebalance("the first ramp")

    # -- spreading the load over the workers ---------------------------------------------------------------------

    def start_rebalance(self, reason: str, delay: float = 0.0) -> None:
        """Move the users' connections so every worker gets its share, in the background; records `rebalanced`.

        `delay`: seconds to wait first (a worker the supervisor just started is still importing the app).
        """
        cfg, app, loadgen = self._config(), self._app(), self._loadgen()
        if not cfg.rebalance or app is None or app.port is None or loadgen is None:
            return
        if self._paused() or not cfg.has_load or len(app.worker_pids()) < 2:
            return
        self._rebalancing.set()
        thread = threading.Thread(
            target=self._rebalance, args=(reason, delay, app, loadgen), name="loadtui-rebalance", daemon=True
        )
        thread.start()

    def _rebalance(self, reason: str, delay: float, app: AppSupervisor, loadgen: LoadGen) -> None:
        try:
            if not self._stop.wait(delay):
                self._spread(reason, app, loadgen)
        finally:
            self._rebalancing.clear()

    def _wait_ticks(self, count: int) -> list[Tick] | None:
        """The last `count` seconds once `count` more were measured; None if the session stops first."""
        with self._seen:
            until = self._ticks + count
            while self._ticks < until:
                if self._stop.is_set():
                    return None
                self._seen.wait(0.2)
            return list(self._recent)[-count:]

    def _spread(self, reason: str, app: AppSupervisor, loadgen: LoadGen) -> None:
        port = app.port
        if port is None:
            return
        cfg = self._config()
        with self._seen:
            users = self._recent[-1].users if cfg.open_model and self._recent else cfg.users
        done = rebalance.spread(
            connections=lambda: rebalance.connections_by_worker(app.worker_pids(), port),
            move=lambda ports, spread_s, fraction: loadgen.reconnect(ports, spread_s, fraction),
            users=users,
            stop=self._stop,
        )
        self._rebalancing.clear()  # the connections are where they belong: figures from now on are steady
        if done is None:
            return
        settled = self._wait_ticks(SETTLED_TICKS)
        if settled is None:
            return
        shares = rebalance.shares(settled)
        if len(shares) < 2:
            return  # another change replaced the workers meanwhile: it spreads the load itself
        text = " / ".join(f"{s:.0%}" for s in shares.values())
        data: dict[str, Any] = {
            "shares": {str(pid): s for pid, s in shares.items()},
            "connections": {str(pid): n for pid, n in done.connections.items()},
            "moved": done.moved,
            "rounds": done.rounds,
            "seconds": round(done.seconds, 2),
            "even": rebalance.within(shares),
        }
        self._event(
            "rebalanced",
            f"load spread over {len(shares)} workers after {reason}: {text} of the work"
            + ("" if rebalance.within(shares) else " (still uneven)"),
            **data,
        )
