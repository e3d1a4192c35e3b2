"""The session engine on the real stack: headless runs, live changes, restarts, orphans, bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import psutil
import pytest
import sample_app

from loadtui.config import RunConfig
from loadtui.results.recorder import read_log
from loadtui.session.core import Session
from tests.helpers import wait_for

LOADTUI = [sys.executable, "-m", "loadtui"]


def run_session(tmp_path: Path, body: Any, **config: Any) -> Session:
    cfg = RunConfig(record=str(tmp_path / "s.jsonl"), spawn_rate=100, **config)
    session = Session(cfg)
    try:
        session.open()
        body(session)
    finally:
        session.close()
    return session


def test_headless_run_records_every_field(tmp_path: Path) -> None:
    record = tmp_path / "run.jsonl"
    result = subprocess.run([*LOADTUI, "headless", "--duration", "15", "--workers", "2", "--users", "20",
                             "--spawn-rate", "20", "--record", str(record)], capture_output=True, text=True,
                            timeout=90)  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert "req/s" in result.stdout and "configuration" in result.stdout  # per-second lines and the summary table
    log = read_log(record)
    assert len(log.ticks) >= 12 and log.summary is not None
    loaded = [t for t in log.ticks if t.rps > 0]
    assert len(loaded) >= 10
    last = loaded[-1]
    assert last.latency.p50 is not None and last.endpoints and last.users == 20
    assert len(last.workers) == 2 and all(w.cpu_percent >= 0 and w.rss_bytes > 0 for w in last.workers)
    assert any(w.cpu_percent > 0 for w in last.workers)
    assert last.app is not None and last.loadgen is not None and last.loadgen.cpu_percent > 0
    assert last.db is not None and last.db.connections > 0 and last.db.max_connections == 100
    assert {p.pid for p in last.pools} == {w.pid for w in last.workers}
    header = json.loads(record.read_text().splitlines()[0])
    assert header["config"]["workers"] == 2
    assert str(record) in result.stderr  # the path is printed at start and exit


def test_rps_falls_to_zero_within_two_seconds_and_workers_change_live(tmp_path: Path) -> None:
    def body(s: Session) -> None:
        wait_for(lambda: len(s.ticks) > 3 and s.ticks[-1].rps > 0, timeout=20, what="load")
        before_failures = sum(t.fail_rps for t in s.ticks)
        s.changes.set_workers(2)
        assert len(s.children.app.worker_pids()) == 2  # type: ignore[union-attr]
        s.changes.set_workers(1)
        n = len(s.ticks)
        wait_for(lambda: len(s.ticks) >= n + 2, timeout=10, what="two more seconds")
        assert sum(t.fail_rps for t in s.ticks) == before_failures  # zero failed requests across both changes
        s.changes.set_users(0)
        at_stop = s.tick_count
        wait_for(lambda: s.ticks[-1].rps == 0, timeout=10, what="rps at zero")
        assert s.tick_count - at_stop <= 2  # counted in seconds of the session, not in a busy machine's wall time
        assert [e.kind for e in s.events].count("workers") == 2

    run_session(tmp_path, body, users=10, scenario="ping")


def test_restart_with_new_pool_settings_shows_in_pg_stat_activity(tmp_path: Path) -> None:
    def body(s: Session) -> None:
        wait_for(lambda: s.ticks and s.ticks[-1].db, timeout=20, what="db figures")
        s.changes.apply(s.config.replace(pool_min=6, pool_max=8))
        tick = wait_for(lambda: s.ticks[-1] if s.ticks[-1].pools and s.ticks[-1].pools[0].max == 8 else None,
                        timeout=15, what="new pool stats")  # fmt: skip
        wait_for(lambda: (s.ticks[-1].db.connections if s.ticks[-1].db else 0) >= 6, timeout=10, what="6 conns")
        assert tick.pools[0].size >= 6
        assert any(e.kind == "restart" for e in s.events)

    run_session(tmp_path, body, users=2, scenario="ping", pool_min=2, pool_max=4)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGKILL])
def test_nothing_survives_the_end_of_a_session(tmp_path: Path, sig: signal.Signals) -> None:
    record = tmp_path / "s.jsonl"
    temporary = Path(tempfile.gettempdir())
    before = {*temporary.glob("loadtui-run-*"), *temporary.glob("loadtui-pg-*")}
    proc = subprocess.Popen([*LOADTUI, "headless", "--duration", "60", "--users", "5", "--workers", "2",
                             "--record", str(record)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)  # fmt: skip
    try:
        wait_for(lambda: record.exists() and '"type":"tick"' in record.read_text(), timeout=40, what="first tick")
        # Its own tree only: session-scoped fixtures of other tests (a database) live on purpose.
        children = [p.pid for p in psutil.Process(proc.pid).children(recursive=True)]
        assert len(children) >= 5  # guardian, postgres, app + 2 workers, load generator
        proc.send_signal(sig)
        proc.wait(20)
        wait_for(lambda: not [p for p in children if psutil.pid_exists(p) and
                              psutil.Process(p).status() != psutil.STATUS_ZOMBIE],
                 timeout=8, what=f"every child gone after {sig.name}")  # fmt: skip
        # Its temporary directories go too, even after SIGKILL (the guardian removes them).
        wait_for(lambda: not ({*temporary.glob("loadtui-run-*"), *temporary.glob("loadtui-pg-*")} - before),
                 timeout=10, what=f"the run's temporary directories removed after {sig.name}")  # fmt: skip
        log = read_log(record)
        assert len(log.ticks) >= 1  # nothing recorded is lost
        if sig != signal.SIGKILL:
            assert log.summary is not None
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--workers", "0"], "--workers must be at least 1"),
        (["--pool-min", "5", "--pool-max", "2"], "--pool-min 5 is above --pool-max 2"),
        (["--scenario", "nope"], "unknown scenario"),
        (["--locustfile", "/nope/locustfile.py"], "does not exist"),
        (["--workers", "10", "--pool-max", "20"], "exceed the 97 PostgreSQL allows"),
        (["--dsn", "postgresql://nobody@127.0.0.1:1/x"], "--dsn does not connect"),
        (["--record", "/proc/nope/s.jsonl"], "cannot write the session log"),
        (["--users", "ten"], "invalid int value"),
        (["--duration", "nan"], "--duration must be a number of seconds above 0"),
        (["--spawn-rate", "inf"], "--spawn-rate must be a number above 0"),
        (["--expect-workers", "2"], "--expect-workers needs --master-bind"),
        (["--app", "nonexistent-cmd --port {port}"], "--app: 'nonexistent-cmd' is not a program on PATH"),
        (["--vary", "threads=1,2"], "KEY one of workers"),
        (["--vary", "workers=1", "--step", "1"], "--step must be at least 3 seconds"),
        (["--slo", "p95 > 3"], "p95 takes `< N ms`"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, args: list[str], words: str) -> None:
    result = subprocess.run([*LOADTUI, "headless", "--duration", "5", *args], capture_output=True, text=True,
                            timeout=60, cwd=tmp_path)  # fmt: skip
    lines = [line for line in result.stderr.splitlines() if line.startswith("loadtui: ")
             and not line.startswith(("loadtui: recording to ", "loadtui: session log ", "loadtui: starting",
                                      "loadtui: checking"))]  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert len(lines) == 1 and words in lines[0], result.stderr
    assert not list(tmp_path.rglob("*.jsonl")), "a run that never started left a session log"


def test_port_in_use_and_broken_locustfile(tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        result = subprocess.run([*LOADTUI, "headless", "--duration", "3", "--port", str(port)], capture_output=True,
                                text=True, timeout=60, cwd=tmp_path)  # fmt: skip
    assert result.returncode == 2 and f"port {port}" in result.stderr and "Traceback" not in result.stderr
    broken = tmp_path / "broken.py"
    broken.write_text("import nonexistent_module_xyz\n")
    result = subprocess.run([*LOADTUI, "headless", "--duration", "3", "--locustfile", str(broken)],
                            capture_output=True, text=True, timeout=60, cwd=tmp_path)  # fmt: skip
    assert result.returncode == 2 and "broken" in result.stderr and "Traceback" not in result.stderr


def test_a_plain_locust_worker_joins(tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    locustfile = Path(sample_app.__file__).with_name("locustfile.py")
    workers: list[subprocess.Popen[bytes]] = []

    def body(s: Session) -> None:
        wait_for(lambda: s.ticks and s.ticks[-1].rps > 0, timeout=30, what="load through the joined worker")
        # A second worker nobody expected (any host that reaches the port could): refused and reported.
        start_worker()
        wait_for(lambda: any(e.kind == "error" and "refused 1 Locust worker" in e.message for e in s.events),
                 timeout=30, what="the unexpected worker refused")  # fmt: skip
        wait_for(lambda: s.ticks[-1].rps > 0, timeout=10, what="load still flowing through the expected worker")

    def start_worker() -> None:
        locust = str(Path(sys.executable).with_name("locust"))  # the venv's script, whether or not it is on PATH
        workers.append(subprocess.Popen([locust, "-f", str(locustfile), "--worker", "--master-host", "127.0.0.1",
                                   "--master-port", str(port), "--headless"], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL))  # fmt: skip

    import threading

    def start_worker_when_the_master_listens() -> None:
        def listening() -> bool:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    return True
            except OSError:
                return False

        wait_for(listening, timeout=30, what="the Locust master to listen")
        start_worker()

    threading.Thread(target=start_worker_when_the_master_listens, daemon=True).start()
    try:
        cfg = dict(users=4, scenario="ping", master_bind=f"127.0.0.1:{port}", expect_remote_workers=1)
        s = run_session(tmp_path, body, **cfg)
        assert any(t.rps > 0 for t in s.ticks)
    finally:
        for worker in workers:
            worker.terminate()
            worker.wait(10)


def test_user_app_with_stock_uvicorn(tmp_path: Path) -> None:
    app = f"{sys.executable} -m uvicorn sample_app.api:app --host {{host}} --port {{port}} --workers {{workers}}"

    def body(s: Session) -> None:
        wait_for(lambda: len(s.ticks) > 3 and s.ticks[-1].rps > 0, timeout=30, what="load on a user app")
        assert len(s.ticks[-1].workers) == 2

    env_dsn = os.environ.get("SAMPLE_APP_DB_DSN")
    run_session(tmp_path, body, users=2, scenario="ping", workers=2, app=app)
    assert env_dsn == os.environ.get("SAMPLE_APP_DB_DSN")


def test_headless_exits_1_when_the_app_never_starts(tmp_path: Path) -> None:
    app = f"{sys.executable} -c 'import sys; sys.exit(3)' --port {{port}}"
    result = subprocess.run([*LOADTUI, "headless", "--duration", "5", "--app", app, "--record",
                             str(tmp_path / "s.jsonl")], capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "s.jsonl").exists(), "a run that never started left a session log"


def test_headless_confirms_a_finding_with_the_frame_that_blocks_the_loop_unless_told_not_to(tmp_path: Path) -> None:
    args = [*LOADTUI, "headless", "--duration", "16", "--scenario", "blocking", "--workers", "1", "--users", "10",
            "--spawn-rate", "100"]  # fmt: skip
    result = subprocess.run([*args, "--record", str(tmp_path / "a.jsonl")], capture_output=True, text=True,
                            timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert "event loop BUSY in sleep_blocking" in result.stdout + result.stderr  # sampled on its own (auto-confirm)
    off = subprocess.run([*args, "--no-auto-confirm", "--record", str(tmp_path / "b.jsonl")], capture_output=True,
                         text=True, timeout=120)  # fmt: skip
    assert off.returncode == 0, off.stderr[-2000:]
    assert "The event loop is blocked" in off.stdout and "py-spy" not in off.stdout + off.stderr


def test_two_load_generator_processes_share_the_load(tmp_path: Path) -> None:
    def body(s: Session) -> None:
        wait_for(lambda: len(s.ticks) > 3 and s.ticks[-1].rps > 0, timeout=40, what="load from two processes")
        assert s.children.loadgen is not None and len(s.children.loadgen.pids) == 3  # the master and its two workers
        last = s.ticks[-1]
        assert last.loadgen is not None and last.loadgen.cores == 2 and len(last.loadgen.pids) == 3

    run_session(tmp_path, body, users=4, scenario="ping", loadgen_processes=2)


def test_the_summary_covers_every_second_after_the_memory_rolled_over(tmp_path: Path) -> None:
    session = Session(RunConfig(record=str(tmp_path / "s.jsonl"), users=2, scenario="ping", spawn_rate=100),
                      recent_ticks=3)  # fmt: skip
    try:
        session.open()
        wait_for(lambda: session.tick_count >= 9, timeout=40, what="nine seconds")
    finally:
        summary = session.close()
    assert summary is not None and len(session.ticks) == 3
    [segment] = summary.segments
    assert segment.seconds >= 9  # from the log: the three seconds in memory would give 3
    assert segment.seconds == len(read_log(tmp_path / "s.jsonl").ticks)


PRINTING_LOCUSTFILE = """
from locust import FastHttpUser, task

print(200)  # a user's locustfile may print anything, at import ...


class NoisyUser(FastHttpUser):
    @task
    def ping(self):
        print([1, 2, 3])  # ... and in every task
        self.client.get("/ping/")
"""


def test_a_locustfile_that_prints_does_not_stop_the_measurements(tmp_path: Path) -> None:
    locustfile = tmp_path / "noisy.py"
    locustfile.write_text(PRINTING_LOCUSTFILE)

    def body(s: Session) -> None:
        wait_for(lambda: sum(1 for t in s.ticks if t.rps > 0) >= 4, timeout=30, what="four loaded seconds")
        assert s.children.loadgen is not None and s.children.loadgen.alive

    run_session(tmp_path, body, users=2, locustfile=str(locustfile))


def test_headless_exits_1_when_the_apps_supervisor_is_killed(tmp_path: Path) -> None:
    record = tmp_path / "s.jsonl"
    proc = subprocess.Popen([*LOADTUI, "headless", "--duration", "60", "--users", "2", "--workers", "2", "--scenario",
                             "ping", "--record", str(record)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)  # fmt: skip
    try:
        wait_for(lambda: record.exists() and '"type":"tick"' in record.read_text(), timeout=40, what="first tick")

        def supervisor() -> psutil.Process | None:
            for p in psutil.Process(proc.pid).children(recursive=True):
                if "-m sample_app" in " ".join(p.cmdline()):
                    return p
            return None

        wait_for(supervisor, timeout=10, what="the app's supervisor").kill()
        _out, err = proc.communicate(timeout=60)
        assert proc.returncode == 1, err[-2000:]
        assert "the app exited with status" in err
        assert read_log(record).summary is not None, err[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--app", "uvicorn x:app --port {port} {oops}"], "uses {oops}, which loadtui does not fill"),
        (["--app", 'uvicorn "x:app --port {port}'], "no closing quotation"),
        (["--host", "http://127.0.0.1:9", "--workers", "4"], "--workers has no effect with --host"),
        (["--users", "100000000"], "--users 100,000,000 is more than this machine holds"),
        (["--loadgen-processes", "500"], "--loadgen-processes 500 is more than"),
        (["--db-max-connections", "100000"], "is absurd for the embedded server"),
        (["--pool-timeout", "0"], "--pool-timeout must be a number of seconds above 0"),
        (["--vary", "workers=1,2", "--host", "http://127.0.0.1:9"], "--vary workers needs an app loadtui starts"),
        (["--rate", "100", "--users", "5"], "--users and --rate each choose how the load comes"),
        (["--rate", "-3"], "--rate must be a number of requests per second"),
        (["--rate", "50", "--max-in-flight", "100000000"], "--max-in-flight 100,000,000 is more than this machine"),
        (["--vary", "rate=fast"], "--vary rate: 'fast' is not a number of requests per second above 0"),
    ],
)
def test_bad_options_are_refused_before_anything_starts(tmp_path: Path, args: list[str], words: str) -> None:
    result = subprocess.run([*LOADTUI, "headless", "--duration", "5", *args], capture_output=True, text=True,
                            timeout=30, cwd=tmp_path)  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and words in result.stderr, result.stderr  # one line, nothing started
    assert not list(tmp_path.rglob("*.jsonl"))
