"""The embedded PostgreSQL: fast start, connection limits, recovery after a killed owner, no survivor."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import psycopg
import pytest

from loadtui.stack.database import EmbeddedDatabase
from tests.helpers import wait_for


@pytest.fixture
def tmp_path() -> Iterator[Path]:
    """A state directory the server's own user can traverse (pytest's tmp_path is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="loadtui-test-", dir="/var/tmp"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(autouse=True)
def remove_what_a_simulated_dead_owner_leaves() -> Iterator[None]:
    """These tests kill owners that have no guardian on purpose; their socket directories are then theirs to remove."""
    temporary = Path(tempfile.gettempdir())
    before = set(temporary.glob("loadtui-pg-*"))
    yield
    for leftover in set(temporary.glob("loadtui-pg-*")) - before:
        shutil.rmtree(leftover, ignore_errors=True)


def test_starts_listens_on_a_socket_only_and_reports_limits(tmp_path: Path) -> None:
    db = EmbeddedDatabase(state_dir=tmp_path / "state", max_connections=30)
    began = time.monotonic()
    db.start()
    try:
        # Fresh cluster (initdb included) to a usable connection: measured, not assumed.
        assert db.start_seconds is not None and time.monotonic() - began < 3.0 * 2  # generous on a loaded CI box
        with psycopg.connect(db.app_dsn) as conn:
            assert conn.execute("SELECT current_user").fetchone() == ("app",)
            assert conn.execute("SHOW listen_addresses").fetchone() == ("",)
        limits = db.limits()
        assert limits.max_connections == 30
        assert limits.for_ordinary_roles == 30 - limits.superuser_reserved - limits.reserved
    finally:
        db.stop()
    assert db.pid is None


OWNER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from loadtui.stack.database import EmbeddedDatabase
    db = EmbeddedDatabase(state_dir=Path(sys.argv[1]))
    db.start()
    print(db.pid, flush=True)
    time.sleep(600)
""")


def test_sigkill_of_the_owner_stops_the_server_and_the_next_start_recovers(tmp_path: Path) -> None:
    state = tmp_path / "state"
    owner = subprocess.Popen([sys.executable, "-c", OWNER, str(state)], stdout=subprocess.PIPE, text=True)
    assert owner.stdout is not None
    pg_pid = int(owner.stdout.readline())
    assert psutil.pid_exists(pg_pid)
    owner.send_signal(signal.SIGKILL)
    owner.wait()
    # The parent-death signal makes PostgreSQL shut down fast; no guardian needed for this one.
    wait_for(lambda: not psutil.pid_exists(pg_pid) or psutil.Process(pg_pid).status() == psutil.STATUS_ZOMBIE,
             timeout=5, what="the orphaned PostgreSQL to stop")  # fmt: skip
    # Leave what a killed run of the library would leave: a stale pid file and handle list.
    data = state / "cluster" / "data"
    (data / "postmaster.pid").write_text(f"{2**22 - 7}\n{data}\n0\n5432\n/tmp\n\n0 0\nready\n")
    (data / ".handle_pids.json").write_text(json.dumps([2**22 - 7]))
    db = EmbeddedDatabase(state_dir=state)
    db.start()
    try:
        with psycopg.connect(db.app_dsn) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        assert not (data / ".handle_pids.json").exists()
    finally:
        db.stop()


def test_a_server_left_running_on_the_data_directory_is_stopped_first(tmp_path: Path) -> None:
    state = tmp_path / "state"
    first = EmbeddedDatabase(state_dir=state)
    first.start()
    leftover = first.pid
    assert leftover is not None
    # Simulate a dead owner: drop our handle (lock included) without stopping the server.
    assert first._lock_file is not None
    first._lock_file.close()
    first._lock_file = None
    second = EmbeddedDatabase(state_dir=state)
    second.start()
    try:
        assert second.pid != leftover
        assert not psutil.pid_exists(leftover) or psutil.Process(leftover).status() == psutil.STATUS_ZOMBIE
    finally:
        second.stop()
        if first._proc is not None:
            first._proc.wait(5)
    assert os.path.exists(state)


def test_a_stale_postmaster_pid_naming_a_live_process_does_not_block_the_start(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with EmbeddedDatabase(state_dir=state) as db:
        data = db.data_dir
    # A pid file left by a killed server whose pid now belongs to someone else (here: this test's own process).
    (data / "postmaster.pid").write_text(f"{os.getpid()}\n{data}\n")
    with EmbeddedDatabase(state_dir=state) as again, psycopg.connect(again.admin_dsn) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_backends_a_killed_postmaster_left_behind_do_not_block_its_revival(tmp_path: Path) -> None:
    import threading

    with EmbeddedDatabase(state_dir=tmp_path / "state") as db:
        busy = psycopg.connect(db.admin_dsn)
        backend = busy.info.backend_pid
        # A backend busy computing does not look for its postmaster's death: it outlives it, holding the shared
        # memory, and a plain restart fails with "pre-existing shared memory block is still in use".
        query = threading.Thread(target=lambda: _swallow(busy, "SELECT count(*) FROM generate_series(1, 1e9)"))
        query.start()
        wait_for(lambda: psutil.Process(backend).cpu_percent(0.1) > 20, 10, "the backend computing")
        assert db.pid is not None
        os.kill(db.pid, signal.SIGKILL)
        wait_for(lambda: not db.alive, 10, "the postmaster to die")
        assert psutil.Process(backend).status() != psutil.STATUS_ZOMBIE  # still at work, orphaned
        seconds = db.revive()
        assert seconds < 10 and db.alive
        assert not psutil.pid_exists(backend) or psutil.Process(backend).status() == psutil.STATUS_ZOMBIE
        with psycopg.connect(db.admin_dsn) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        query.join(10)


def _swallow(conn: psycopg.Connection[tuple[object, ...]], sql: str) -> None:
    """Run `sql` and ignore its end (the server is killed under it)."""
    try:
        conn.execute(sql)
    except psycopg.Error:
        pass
    finally:
        conn.close()


def test_the_state_directory_is_never_reached_through_a_planted_link(tmp_path: Path) -> None:
    from loadtui.errors import UsageError

    target = tmp_path / "victim"
    target.mkdir(mode=0o700)
    planted = tmp_path / "state"
    planted.symlink_to(target)
    with pytest.raises(UsageError, match="is a symbolic link or not a directory"):
        EmbeddedDatabase(state_dir=planted).start()
    assert target.stat().st_mode & 0o777 == 0o700  # not chmodded through the link
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    os.chown(foreign, 65534, 65534)  # nobody's
    with pytest.raises(UsageError, match="belongs to another user"):
        EmbeddedDatabase(state_dir=foreign).start()


def test_a_planted_lock_link_is_refused_not_truncated(tmp_path: Path) -> None:
    from loadtui.errors import UsageError

    precious = tmp_path / "precious"
    precious.write_text("keep me")
    state = tmp_path / "state"
    (state / "cluster").mkdir(parents=True)
    (state / "cluster" / "lock").symlink_to(precious)
    with pytest.raises(UsageError, match="lock"):
        EmbeddedDatabase(state_dir=state).start()
    assert precious.read_text() == "keep me"


def test_the_server_does_not_inherit_secrets_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "do-not-leak")
    monkeypatch.setenv("LC_TIME", "C")
    with EmbeddedDatabase(state_dir=tmp_path / "state") as db:
        assert db.pid is not None
        environ = psutil.Process(db.pid).environ()
    assert "AWS_SECRET_ACCESS_KEY" not in environ and environ.get("LC_TIME") == "C"
    assert set(environ) <= {"PATH", "HOME", "LANG", "LANGUAGE", "TZ"} | {
        k for k in environ if k.startswith(("LC_", "PG"))
    }


def test_a_missing_useradd_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    from loadtui.errors import UsageError
    from loadtui.stack.database import _ensure_system_user

    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(UsageError, match="nor `useradd` to create it"):
        _ensure_system_user("loadtui_no_such_user")
