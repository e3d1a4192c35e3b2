"""Helpers shared by the tests: synthetic ticks, waiting on conditions with deadlines, process checks."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import psutil

from loadtui.model import DbStats, Finding, Latency, LoadgenStats, PoolStats, ProcessStats, Tick, WorkerStats

T = TypeVar("T")


def wait_for(condition: Callable[[], T | None], timeout: float, what: str, interval: float = 0.05) -> T:
    """Poll `condition` until it returns something truthy, or fail after `timeout` seconds; return that."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def tick(t: float = 0.0, *, rps: float = 100.0, p50: float | None = 10.0, p95: float | None = 20.0,
         users: int = 50, worker_cpu: Iterable[float] = (30.0,), lag: float | None = 1.0, in_flight: int | None = 2,
         threads: int | None = 3, loadgen_cpu: float = 30.0, loadgen_cores: int = 1, cpu_count: int = 2,
         db_conns: int = 10, db_max: int = 100, active: int = 0, reserved: int = 3, pool_waiting: int = 0,
         pool_size: int = 10, pool_max: int = 10, pool_errors: int = 0, errors: list[dict[str, Any]] | None = None,
         fail_rps: float = 0.0, findings: list[Finding] | None = None, segment: int = 0,
         probe_ms: float | None = None, kept_ms: float | None = None, helper: bool = True,
         db: bool = True) -> Tick:  # fmt: skip
    """A synthetic second with sensible healthy defaults; override what a test is about.

    `helper=False`: an app without loadtui's helper (no lag, in-flight or pool figures); `probe_ms`: the probe's wait.
    """
    cpus = list(worker_cpu)
    if not helper:
        lag = in_flight = None
    workers = [WorkerStats(pid=1000 + i, cpu_percent=c, rss_bytes=50 * 2**20, in_flight=in_flight, loop_lag_ms=lag,
                           threads=threads, requests_per_s=rps / max(1, len(cpus)), stale_s=0.2)
               for i, c in enumerate(cpus)]  # fmt: skip
    pools = [PoolStats(pid=1000 + i, size=pool_size, available=0 if pool_waiting else pool_size // 2,
                       waiting=pool_waiting, wait_ms=pool_waiting * 100.0, max=pool_max, errors=pool_errors)
             for i in range(len(cpus)) if helper]  # fmt: skip
    from loadtui.model import ErrorCount, ProbeStats

    probe = None if probe_ms is None else ProbeStats(sent=4, answered=4, p50_ms=probe_ms, max_ms=probe_ms,
                                                     kept_p50_ms=kept_ms)  # fmt: skip

    return Tick(
        t=t, rps=rps, fail_rps=fail_rps, users=users, latency=Latency(p50=p50, p95=p95, p99=p95, max=p95),
        workers=workers, app=ProcessStats(pid=999, cpu_percent=1.0, rss_bytes=40 * 2**20),
        loadgen=LoadgenStats(pids=[2000], cpu_percent=loadgen_cpu, cores=loadgen_cores),
        db=DbStats(connections=db_conns, max_connections=db_max, by_state={"active": active, "idle": db_conns - active},
                   by_application={}, reserved=reserved) if db else None, probe=probe,
        pools=pools, cpu_count=cpu_count, errors=[ErrorCount(**e) for e in errors or []],
        findings=findings or [], segment=segment,
    )  # fmt: skip


def descendants_alive(pids: Iterable[int]) -> list[psutil.Process]:
    """Processes among `pids` that still exist (zombies excluded)."""
    alive = []
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            if proc.status() != psutil.STATUS_ZOMBIE:
                alive.append(proc)
        except psutil.NoSuchProcess:
            pass
    return alive


RUN_TAG_ENV = "LOADTUI_TEST_RUN"
"""Set once per test run (tests/conftest.py); every process the run starts inherits it, other runs' do not."""


def our_processes() -> list[psutil.Process]:
    """Every process this test run's loadtui sessions could have started and that is still alive.

    Scoped by the run's environment tag, so a loadtui (or another test run) elsewhere on the machine never counts.
    """
    tag = os.environ.get(RUN_TAG_ENV)
    found = []
    for proc in psutil.process_iter(["cmdline", "name"]):
        cmd = " ".join(proc.info.get("cmdline") or [])
        if (proc.info.get("name") == "postgres" and "loadtui" in cmd) or any(
            k in cmd for k in ("sample_app", "loadtui.loadgen", "loadtui.procs.guardian", "loadtui.serve")
        ):
            try:
                if tag is not None and proc.environ().get(RUN_TAG_ENV) != tag:
                    continue
            except (psutil.AccessDenied, psutil.NoSuchProcess):
                continue
            found.append(proc)
    me = psutil.Process()
    ours = {me.pid} | {p.pid for p in me.parents()}  # the test run itself may mention sample_app in its arguments
    return [p for p in found if p.pid not in ours and _alive(p)]


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def write_session_log(path: Path, *, segments: int = 2, seconds: int = 10, workers: int = 2) -> Path:
    """A synthetic session log: `segments` worker counts of `seconds` each, endpoints, a finding, a mark, a summary."""
    import dataclasses
    import datetime as dt

    from loadtui.config import RunConfig
    from loadtui.model import EndpointStats, Event
    from loadtui.results.recorder import Recorder

    rec = Recorder(path)
    base = RunConfig(workers=workers, users=50)
    rec.header(base, dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC))
    finding = Finding("too-few-workers", "warning", "A worker is CPU-bound", "worker 1000 at 99%", "add workers (+)")
    t = 0.0
    for seg in range(segments):
        cfg = base.replace(workers=workers + seg)
        if seg:
            rec.event(Event(t + 0.5, "config", f"workers → {cfg.workers}", {"segment": seg, "config": cfg.to_dict()}))
        for i in range(seconds):
            t += 1.0
            rps = (500.0 if i < 3 else 1000.0) * (seg + 1)
            k = tick(t, rps=rps, p50=10.0, p95=30.0 - seg * 10, worker_cpu=[99.0 - seg * 40] * cfg.workers,
                     segment=seg, findings=[finding] if seg == 0 and i >= 4 else None)  # fmt: skip
            eps = [EndpointStats("GET", "/tasks/", rps * 0.8, 0.0, 9.0, 28.0, 40.0),
                   EndpointStats("POST", "/tasks/", rps * 0.2, 0.0, 12.0, 35.0, 50.0)]  # fmt: skip
            rec.tick(dataclasses.replace(k, endpoints=eps))
            if seg == 0 and i == 4:
                rec.event(Event(t, "finding-started", finding.title, {"id": finding.id, "evidence": finding.evidence}))
            if seg == 0 and i == 6:
                rec.event(Event(t + 0.2, "mark", "before adding a worker", {"note": "before adding a worker"}))
    rec.summary({"seconds": segments * seconds})
    rec.close()
    return path


def refused(call: Callable[[], object]) -> str:
    """The one line a refusal (UsageError) says; fails the test if `call` is accepted."""
    import pytest

    from loadtui.errors import UsageError

    with pytest.raises(UsageError) as caught:
        call()
    return str(caught.value)
