"""Watching the children every second: crashes and replacements (through the pure :class:`HealthWatcher`), the
embedded server's death, remote workers coming and going, strangers at the load generator's port, malformed
figures. One job: turn what a second shows about the children into events, and start what must follow (the database
keeper, spreading the load onto a replaced worker).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from loadtui.config import RunConfig
from loadtui.measure import remote
from loadtui.measure.ticks import TickBuilder
from loadtui.model import Tick
from loadtui.session.children import Children
from loadtui.session.health import HealthWatcher, Observation

REPLACED_WORKER_READY_S = 2.0
"""Seconds a worker the supervisor started in place of a dead one gets to import the app before load moves to it."""


class Watchman:
    """Reads each second for what happened to the children; says it once, as an event."""

    def __init__(
        self,
        *,
        health: HealthWatcher,
        children: Children,
        builder: TickBuilder,
        event: Callable[..., object],
        changing: threading.Event,
        stop: threading.Event,
        rebalance: Callable[[str, float], None],
    ) -> None:
        self._health = health
        self._children = children
        self._builder = builder
        self._event = event
        self._changing = changing
        self._stop = stop
        self._rebalance = rebalance
        self._remote_seen: set[str] = set()
        self._refused_workers = 0
        self._told_rejected = False

    def second(self, tick: Tick, record: dict[str, Any] | None, config: RunConfig) -> None:
        """Everything one measured second says about the children."""
        self._watch(self._builder.workers)
        self._locust_workers(record, config)
        self._remote(tick)
        stats = self._builder.appstats
        if stats.rejected and not self._told_rejected:
            self._told_rejected = True
            self._event(
                "error",
                f"dropped a malformed stats record ({stats.last_rejected}); bad records are counted in the "
                "summary and measuring goes on",
            )

    def _remote(self, tick: Tick) -> None:
        """Say when a remote worker starts reporting and when it is gone."""
        if self._children.listener is None:
            return
        now = {w.name for w in tick.workers if w.host}
        for name in sorted(now - self._remote_seen):
            self._event("worker-started", f"remote worker {name} reporting", worker=name)
        for name in sorted(self._remote_seen - now):
            self._event("worker-exited", f"remote worker {name} silent for {remote.GONE_S:.0f} s: gone", worker=name)
        self._remote_seen = now

    def _locust_workers(self, record: dict[str, Any] | None, cfg: RunConfig) -> None:
        """Anyone who reaches the load generator's master port can try to join it: say so when someone it does not
        expect did (it was refused, and none of its messages reached the figures)."""
        refused = record.get("refused_workers") if record is not None else None
        if not isinstance(refused, int) or refused <= self._refused_workers:
            return
        self._refused_workers = refused
        dropped = record.get("dropped_messages") if record is not None else None
        where = (
            f"beyond the {cfg.expect_remote_workers} expected at --master-bind {cfg.master_bind}: a host that reached "
            "the port tried to join. Bind to a private address or firewall the port"
            if cfg.master_bind is not None
            else "without this session's secret: another program on this machine reached the load generator's port"
        )
        self._event(
            "error",
            f"refused {refused} Locust worker(s) {where}; their messages ({dropped or 0} dropped) never reach the "
            "figures",
            refused=refused,
            dropped=dropped,
        )

    def _watch(self, workers: list[int]) -> None:
        """Tell the health watcher what this second shows; record what it reports."""
        c = self._children
        if c.database is not None and not c.database.alive and not self._stop.is_set():
            c.database_died()
        app_alive = None
        if c.app is not None and c.app.config is not None:
            app_alive = c.app.alive
        seen = Observation(
            changing=self._changing.is_set(),
            app_alive=app_alive,
            app_status=c.app.exit_status if c.app is not None else None,
            workers=tuple(workers),
            loadgen_alive=c.loadgen.alive if c.loadgen is not None and c.loadgen.pids else None,
            loadgen_error=c.loadgen.error if c.loadgen is not None else None,
            db_error=self._builder.db.last_error if self._builder.db is not None else None,
            has_db=self._builder.db is not None,
        )
        for notice in self._health.observe(seen):
            data = dict(notice.data)
            if notice.kind == "app-exited" and c.app is not None:
                data["log_tail"] = c.app.log_tail()
                # Workers whose supervisor died would serve on, unmanaged: stop them (off the tick thread).
                threading.Thread(target=c.app.stop, name="loadtui-app-cleanup", daemon=True).start()
            self._event(notice.kind, notice.message, **data)
            if notice.kind == "worker-started":
                # The supervisor replaced a worker that died: the users' connections stay on the survivors until
                # they are moved, and the new worker would idle beside a pinned one.
                self._rebalance(f"worker {data.get('pid')} replaced a dead one", REPLACED_WORKER_READY_S)
