"""Measuring one second: the load generator's record plus every collector, built into one Tick.

:class:`TickBuilder` owns the collectors (processes, the workers' own stats, PostgreSQL) and the cached process
trees; the session calls :meth:`TickBuilder.measure` once a second with what it runs now. Diagnosis and the health
watcher read the result; nothing here decides or records.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from loadtui.loadgen import LoadGen
from loadtui.loadgen.record import LoadRecord
from loadtui.measure.collectors import (
    AppStatsCollector,
    DbCollector,
    OutsideCollector,
    ProcessCollector,
    Rescanned,
    descendants,
    steal_percent,
)
from loadtui.measure.probe import Prober
from loadtui.measure.remote import StatsListener
from loadtui.model import LoadgenStats, Tick
from loadtui.stack.supervisor import AppProcesses, AppSupervisor


@dataclass(frozen=True)
class Running:
    """What the session runs this second."""

    app: AppSupervisor | None
    loadgen: LoadGen | None
    expected_workers: int
    loadgen_cores: int
    changing: bool
    """A change replaces processes on purpose: look the process trees up again."""
    segment: int
    probe: Prober | None = None
    """The probe requests, once the app answers (None with --no-probe)."""


class TickBuilder:
    """Builds the measured Tick of each second (findings are added by the diagnosis)."""

    def __init__(self, stats_dir: Path, running: Callable[[], Running]) -> None:
        self._running = running
        self._processes = ProcessCollector()
        self.appstats = AppStatsCollector(stats_dir)
        """The workers' stats records: read by the session for the count of malformed ones."""
        self.db: DbCollector | None = None
        """PostgreSQL's figures, once the session knows the server."""
        self.remote: StatsListener | None = None
        """Workers of apps loadtui did not start, sending their figures (`--stats-listen`)."""
        self._app_tree: Rescanned[AppProcesses] = Rescanned(self._app_processes, lambda p: p.workers)
        self._loadgen_tree: Rescanned[list[int]] = Rescanned(self._loadgen_processes, list)
        self.workers: list[int] = []
        """The app's worker pids seen in the last second."""
        self.outside = OutsideCollector()
        """Other programs using the cores (their CPU disturbs the figures)."""

    def _app_processes(self) -> AppProcesses | None:
        app = self._running().app
        return app.processes() if app is not None else None

    def _loadgen_processes(self) -> list[int] | None:
        loadgen = self._running().loadgen
        return descendants(loadgen.pids[0]) if loadgen is not None and loadgen.pids else None

    def measure(self, t: float, record: dict[str, Any] | None) -> Tick:
        """The Tick of the second ending at session time `t`, from the load generator's `record` (None: none)."""
        now = self._running()
        workers: list[int] = []
        supervisor: int | None = None
        if now.app is not None:
            procs = self._app_tree.get(expected=now.expected_workers, force=now.changing or not now.app.alive)
            if procs is not None:
                workers, supervisor = procs.workers, procs.supervisor
        self.workers = workers
        loadgen_pids: list[int] = []
        if now.loadgen is not None and now.loadgen.pids:
            loadgen_pids = self._loadgen_tree.get(force=now.changing) or []
        sampled = self._processes.sample(workers + ([supervisor] if supervisor else []) + loadgen_pids)
        worker_rows, pools = self.appstats.sample({pid: sampled[pid] for pid in workers if pid in sampled})
        if self.remote is not None:
            remote_rows, remote_pools = self.remote.sample()
            worker_rows, pools = worker_rows + remote_rows, pools + remote_pools
        lg_rows = [sampled[p] for p in loadgen_pids if p in sampled]
        loadgen = None
        if now.loadgen is not None:
            loadgen = LoadgenStats(
                pids=loadgen_pids,
                cpu_percent=round(sum(p.cpu_percent for p in lg_rows), 1),
                per_process=lg_rows,
                cores=now.loadgen_cores,
            )
        load = LoadRecord.parse(record)
        cores = os.cpu_count() or 1
        machine = psutil.cpu_percent(None)
        return Tick(
            t=t,
            rps=load.rps,
            fail_rps=load.fail_rps,
            retried_rps=load.retried_rps,
            users=load.users,
            latency=load.latency,
            open=load.open,
            endpoints=list(load.endpoints),
            errors=list(load.errors),
            workers=worker_rows,
            app=sampled.get(supervisor) if supervisor else None,
            loadgen=loadgen,
            db=self.db.sample() if self.db is not None else None,
            pools=pools,
            probe=now.probe.take() if now.probe is not None else None,
            cpu_count=cores,
            machine_cpu_percent=machine,
            steal_percent=steal_percent(),
            outside=self.outside.sample(machine, sum(p.cpu_percent for p in sampled.values()), cores),
            segment=now.segment,
        )
