"""The real stack for integration tests: embedded PostgreSQL, the sample app under uvicorn workers, Locust."""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from loadtui.procs.processes import Guardian, free_port, spawn, stop_group
from loadtui.stack.database import EmbeddedDatabase
from tests.helpers import wait_for


@pytest.fixture(scope="session")
def guardian() -> Iterator[Guardian]:
    g = Guardian()
    g.start()
    yield g
    g.close()


@pytest.fixture(scope="session")
def database(guardian: Guardian) -> Iterator[EmbeddedDatabase]:
    db = EmbeddedDatabase(guardian=guardian, max_connections=100)
    db.start()
    yield db
    db.stop()


@dataclass
class RunningApp:
    proc: subprocess.Popen[bytes]
    port: int
    stats_dir: Path

    def conn(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)


def start_sample_app(db: EmbeddedDatabase, guardian: Guardian, workers: int, **settings: str) -> RunningApp:
    stats_dir = Path(tempfile.mkdtemp(prefix="appstats-"))
    port = free_port()
    env = dict(os.environ, SAMPLE_APP_DB_DSN=db.app_dsn, LOADTUI_STATS_DIR=str(stats_dir), SAMPLE_APP_SLEEP_MS="20")
    env.update({f"SAMPLE_APP_{k.upper()}": v for k, v in settings.items()})
    proc = spawn([sys.executable, "-m", "sample_app", "--port", str(port), "--workers", str(workers)], env=env)
    guardian.watch(proc.pid)
    app = RunningApp(proc, port, stats_dir)

    def ready() -> bool:
        try:
            c = app.conn()
            c.request("GET", "/health")
            return c.getresponse().status == 200
        except OSError:
            return False

    wait_for(ready, timeout=30, what="the sample app to answer")
    wait_for(lambda: len(list(stats_dir.glob("*.json"))) == workers, timeout=15, what=f"{workers} stats files")
    return app


@pytest.fixture
def sample_app_factory(database: EmbeddedDatabase, guardian: Guardian) -> Iterator[object]:
    started: list[RunningApp] = []

    def make(workers: int = 2, **settings: str) -> RunningApp:
        app = start_sample_app(database, guardian, workers, **settings)
        started.append(app)
        return app

    yield make
    for app in started:
        stop_group(app.proc)
        guardian.forget(app.proc.pid)
