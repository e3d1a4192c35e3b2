"""Workers of an app loadtui did not start send their figures over UDP (`--stats-listen`), on the real stack."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import psutil
import pytest

from loadtui.appstats import encode
from loadtui.config import RunConfig
from loadtui.procs.processes import Guardian, free_port, spawn, stop_group
from loadtui.session.core import Session
from loadtui.stack.database import EmbeddedDatabase
from loadtui.stack.supervisor import wait_for_url
from tests.helpers import wait_for

TOKEN = "test-token"  # noqa: S105 (a test's shared secret)


def test_remote_workers_report_cpu_and_memory_go_stale_then_away(
    tmp_path: Path, database: EmbeddedDatabase, guardian: Guardian, monkeypatch: pytest.MonkeyPatch
) -> None:
    listen_port, app_port = free_port(), free_port()
    # The app runs on its own, as in a container or on a staging host: loadtui only reaches it over the network.
    env = dict(os.environ, SAMPLE_APP_DB_DSN=database.app_dsn, LOADTUI_STATS_URL=f"udp://127.0.0.1:{listen_port}",
               LOADTUI_STATS_TOKEN=TOKEN)  # fmt: skip
    env.pop("LOADTUI_STATS_DIR", None)
    app = spawn([sys.executable, "-m", "loadtui.serve", "sample_app.api:app", "--port", str(app_port), "--workers", "2",
                 "--no-access-log"], env=env)  # fmt: skip
    guardian.watch(app.pid)
    monkeypatch.setenv("LOADTUI_STATS_TOKEN", TOKEN)
    try:
        assert wait_for_url(f"http://127.0.0.1:{app_port}/health", timeout=30)
        config = RunConfig(host=f"http://127.0.0.1:{app_port}", stats_listen=f"127.0.0.1:{listen_port}", users=4,
                           spawn_rate=10, scenario="ping", record=str(tmp_path / "s.jsonl"))  # fmt: skip
        s = Session(config)
        s.open()
        try:

            def two_measured() -> bool:
                recent = list(s.ticks)[-3:]
                return len(recent) == 3 and all(
                    len(t.workers) == 2 and all(w.host and w.cpu_percent > 0 and w.rss_bytes > 10 * 2**20
                                                for w in t.workers) for t in recent)  # fmt: skip

            wait_for(two_measured, 20, "both remote workers' CPU and memory, three seconds in a row")
            assert s.ticks[-1].rps > 0 and all(w.requests_per_s is not None for w in s.ticks[-1].workers)
            # A datagram signed with another token is dropped and counted, never shown.
            import socket

            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                forged = {"pid": 1, "host": "intruder", "time": 0.0, "cpu_percent": 99.0, "rss_bytes": 1}
                sock.sendto(encode(forged, "wrong"), ("127.0.0.1", listen_port))
            assert s.children.listener is not None
            wait_for(
                lambda: s.children.listener is not None and s.children.listener.unauthenticated >= 1,
                5,
                "the forged datagram",
            )
            assert all(w.host != "intruder" for w in s.ticks[-1].workers)
            # A killed worker goes stale, then away (its supervisor starts another, which reports itself).
            victim = s.ticks[-1].workers[0]
            os.kill(victim.pid, signal.SIGKILL)
            wait_for(lambda: any(w.pid == victim.pid and (w.stale_s or 0) > 3 for w in s.ticks[-1].workers), 10,
                     "the killed worker shown stale")  # fmt: skip
            wait_for(lambda: all(w.pid != victim.pid for w in s.ticks[-1].workers), 15, "the killed worker gone")
            assert any(e.kind == "worker-exited" and victim.name in e.message for e in s.events)
        finally:
            summary = s.close()
        assert summary is not None and summary.remote_dropped >= 1
    finally:
        stop_group(app)
        guardian.forget(app.pid)
        assert not psutil.pid_exists(app.pid) or psutil.Process(app.pid).status() == psutil.STATUS_ZOMBIE
