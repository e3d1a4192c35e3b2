"""Faults mid-run on the real stack: a worker, the database or the app's supervisor killed with SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from loadtui.config import RunConfig
from loadtui.model import Tick
from loadtui.session.core import Session
from tests.helpers import wait_for


@pytest.fixture
def session(tmp_path: Path) -> Iterator[Session]:
    # 10 users beside 2 × 10 pooled connections: no pool queue but one a fault makes (the pools reconnect from 1).
    s = Session(
        RunConfig(workers=2, users=10, spawn_rate=10, pool_min=1, pool_max=10, record=str(tmp_path / "s.jsonl"))
    )
    s.open()
    try:
        wait_for(lambda: s.ticks and s.ticks[-1].rps > 0, 30, "requests flowing")
        yield s
    finally:
        s.close()


def kinds(s: Session) -> list[str]:
    return [e.kind for e in s.events]


def test_a_killed_worker_is_replaced_and_serves_within_10_s(session: Session) -> None:
    assert session.children.app is not None
    before = session.children.app.worker_pids()
    victim = before[0]
    seen = session.tick_count
    os.kill(victim, signal.SIGKILL)

    def replacement_serves() -> Tick | None:
        tick = session.ticks[-1]
        pids = [w.pid for w in tick.workers]
        new = [w for w in tick.workers if w.pid != victim and (w.requests_per_s or 0) > 0 and w.pid not in before]
        return tick if len(pids) == 2 and victim not in pids and new else None

    wait_for(replacement_serves, 10, "a replacement worker serving requests")
    assert {"worker-exited", "worker-started"} <= set(kinds(session))
    exited = next(e for e in session.events if e.kind == "worker-exited")
    assert str(victim) in exited.message
    later = list(session.ticks)[-(session.tick_count - seen) :]
    assert all(victim not in [w.pid for w in t.workers] for t in later[3:]), "the dead worker's stale stats linger"
    assert session.failed is None
    # The load follows the supervisor's change: the users' connections are spread over the replacement too.
    spread = wait_for(
        lambda: next((e for e in session.events if e.kind == "rebalanced" and "replaced" in e.message), None),
        20,
        "the load spread after the replacement",
    )
    assert spread.data.get("even"), spread.message


def test_a_killed_database_is_restarted_and_requests_succeed_again_within_20_s(session: Session) -> None:
    assert session.children.database is not None and session.children.database.pid is not None
    os.kill(session.children.database.pid, signal.SIGKILL)
    wait_for(lambda: "db-back" in kinds(session), 20, "db-back")
    back = next(e for e in session.events if e.kind == "db-back")
    lost = next(e for e in session.events if e.kind == "db-lost")
    assert lost.t < back.t and any(e.kind == "db-started" and e.data.get("restarted") for e in session.events)

    def healthy() -> bool:
        tick = session.ticks[-1]
        return tick.t > back.t and tick.rps > 100 and tick.fail_rps < 0.05 * tick.rps

    wait_for(healthy, 20 - (session.elapsed - lost.t), "requests succeeding again")
    assert session.failed is None
    # Nothing committed was lost: the users read back the rows they created before the kill (a 404 would be one).
    settled = back.t + 3
    wait_for(lambda: session.ticks[-1].t > settled + 8, 20, "eight seconds of load after the return")
    missing = [e for t in session.ticks if t.t > settled for e in t.errors if e.new and "404" in e.error]
    assert not missing, missing[:3]
    # The fault's errors are read as the fault, not as a connection limit or a pool queue.
    named = [e.data.get("id") for e in session.events if e.kind == "finding-started" and e.t > lost.t]
    assert not {"db-connection-limit", "pool-exhausted"} & set(named), named


def test_headless_exits_1_when_the_app_supervisor_is_killed(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "loadtui", "headless", "--duration", "60", "--users", "5", "--workers", "2",
         "--record", str(tmp_path / "s.jsonl")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        log = tmp_path / "s.jsonl"

        def app_started() -> str | None:
            text = log.read_text() if log.exists() else ""
            return text if '"kind":"app-started"' in text else None

        started = wait_for(app_started, 60, "the app")
        event = next(json.loads(line) for line in started.splitlines() if '"kind":"app-started"' in line)
        worker = event.get("workers", event.get("data", {}).get("workers"))[0]
        supervisor = psutil.Process(worker).parent()
        assert supervisor is not None and supervisor.pid != proc.pid
        supervisor.kill()
        _out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1, err
    assert "the app exited with status" in err


def _headless(tmp_path: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "loadtui", "headless", "--users", "4", "--record", str(tmp_path / "s.jsonl"), *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _log_kinds(path: Path) -> list[str]:
    return [json.loads(line).get("type") for line in path.read_text().splitlines() if line.strip()]


def test_ctrl_c_in_headless_exits_130_after_its_summary(tmp_path: Path) -> None:
    proc = _headless(tmp_path, "--duration", "60")
    try:
        assert proc.stdout is not None
        for line in proc.stdout:  # the table's first second: the session is measuring
            if line.split() and line.split()[0].isdigit():
                break
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "configuration" in out and "Traceback" not in err
    assert _log_kinds(tmp_path / "s.jsonl")[-1] == "summary"


def test_a_reader_that_closes_the_output_ends_headless_cleanly(tmp_path: Path) -> None:
    proc = _headless(tmp_path, "--duration", "60")
    try:
        assert proc.stdout is not None and proc.stderr is not None
        for _ in range(3):  # `loadtui headless … | head -3`
            proc.stdout.readline()
        proc.stdout.close()
        proc.wait(timeout=30)
        err = proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0 and "Traceback" not in err, err
    assert _log_kinds(tmp_path / "s.jsonl")[-1] == "summary"
