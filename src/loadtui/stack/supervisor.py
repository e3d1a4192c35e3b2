"""The app supervisor: starts the app under test, knows its worker processes, changes their number live.

The sample app runs as `python -m sample_app` (migrations, then uvicorn's Multiprocess supervisor on an IPPROTO_TCP
socket, see :mod:`loadtui.serve`); a user's app runs from `--app` with `{host}`, `{port}` and `{workers}` filled in.
Either way the process loadtui starts is the *supervisor*; its children whose command line runs
`multiprocessing.spawn` are the workers (uvicorn's `resource_tracker` child is not one, DESIGN 4.2). An app that runs
in one process (stock `uvicorn app:app`) is its own worker.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil

from loadtui.appstats import STATS_DIR_ENV
from loadtui.config import RunConfig, app_path
from loadtui.errors import UsageError
from loadtui.procs import logfiles
from loadtui.procs.processes import Guardian, free_port, spawn, stop_group

HOST = "127.0.0.1"
"""The app listens on loopback only (DESIGN: safe by default)."""

READY_TIMEOUT = 45.0
"""Deadline for the app to answer and show its workers."""

WORKER_CHANGE_TIMEOUT = 10.0
"""Deadline for a live worker change to show in the process table."""


class AppStartError(RuntimeError):
    """The app did not become ready; the message carries the app's last log lines."""


@dataclass(frozen=True)
class AppProcesses:
    """The app's processes at one moment."""

    supervisor: int
    workers: list[int]


def check_port_free(port: int, host: str = HOST) -> None:
    """Raise UsageError if something already listens on `port`."""
    with socket.socket() as sock:
        # Like the app's own socket: connections of a previous run in TIME_WAIT must not count as "in use".
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            raise UsageError(
                f"port {port} on {host} is in use; pass another --port or stop what listens there"
            ) from None


def is_worker(proc: psutil.Process, parent: psutil.Process | None = None) -> bool:
    """True for a worker child of the app's supervisor (not multiprocessing's resource tracker).

    uvicorn's supervisor spawns its workers (`multiprocessing.spawn` in their command line); gunicorn and other
    pre-fork servers fork them (gunicorn then retitles them "gunicorn: worker [...]"), so a forked worker runs its
    parent's executable.
    """
    try:
        text = " ".join(proc.cmdline())
        if "resource_tracker" in text:
            return False
        if "multiprocessing.spawn" in text or "spawn_main" in text:
            return True
        return parent is not None and proc.exe() == parent.exe()
    except psutil.Error:
        return False


class AppSupervisor:
    """Runs one app process tree for the session."""

    def __init__(
        self, *, run_dir: Path, guardian: Guardian | None = None, cancel: threading.Event | None = None
    ) -> None:
        """`cancel`: set when loadtui quits, so a start that waits for the app gives up at once."""
        self.run_dir = run_dir
        self._cancel = cancel or threading.Event()
        self.stats_dir = run_dir / "appstats"
        self.log_path = run_dir / "app.log"
        self._guardian = guardian
        self._proc: subprocess.Popen[bytes] | None = None
        self._ps: psutil.Process | None = None
        self.port: int | None = None
        self.config: RunConfig | None = None
        self._stopping = threading.Lock()

    # -- starting and stopping ---------------------------------------------------------------------------------

    def argv(self, config: RunConfig, port: int) -> list[str]:
        """The command that starts the app."""
        if config.app is None:
            return [
                sys.executable,
                "-m",
                "sample_app",
                "--host",
                HOST,
                "--port",
                str(port),
                "--workers",
                str(config.workers),
                "--access-log" if config.access_log else "--no-access-log",
            ]
        values = {"host": HOST, "port": str(port), "workers": str(config.workers)}
        return [part.format(**values) for part in shlex.split(config.app)]

    def env(self, config: RunConfig, dsn: str | None) -> dict[str, str]:
        """The app's environment: the sample app's settings, and where workers publish their stats."""
        env = dict(os.environ)
        env["PATH"] = app_path()
        env[STATS_DIR_ENV] = str(self.stats_dir)
        env["PYTHONUNBUFFERED"] = "1"
        if dsn is not None:
            env["SAMPLE_APP_DB_DSN"] = dsn
            # The usual name for users' apps. Always ours: a DATABASE_URL left in the user's environment would make
            # the app load-test another database while loadtui watches this one.
            env["DATABASE_URL"] = dsn
        env["SAMPLE_APP_DB_MODE"] = config.db_mode
        env["SAMPLE_APP_POOL_MIN"] = str(config.pool_min)
        env["SAMPLE_APP_POOL_MAX"] = str(config.pool_max)
        env["SAMPLE_APP_POOL_TIMEOUT"] = str(config.pool_timeout)
        env["SAMPLE_APP_SLEEP_MS"] = str(config.sleep_ms)
        return env

    def start(self, config: RunConfig, dsn: str | None, progress: Callable[[str], object] | None = None) -> None:
        """Start the app and wait until it answers with the expected number of workers (`progress` hears how far)."""
        self.stats_dir.mkdir(parents=True, exist_ok=True)
        for stale in self.stats_dir.glob("*.json"):
            stale.unlink(missing_ok=True)
        if self.port is None:
            if config.port:
                check_port_free(config.port)
                self.port = config.port
            else:
                self.port = free_port()
        else:
            check_port_free(self.port)
        argv = self.argv(config, self.port)
        env = self.env(config, dsn)
        if shutil.which(argv[0], path=env.get("PATH")) is None:
            raise UsageError(f"--app: command not found: {argv[0]}; check the command or give its full path")
        with open(self.log_path, "ab") as log:
            log.write(f"--- loadtui: starting {shlex.join(argv)}\n".encode())
            log.flush()
            try:
                self._proc = spawn(argv, env=env, stdout=log, stderr=log)
            except FileNotFoundError:
                raise UsageError(f"--app command not found: {argv[0]}; check the command") from None
        if self._guardian is not None:
            self._guardian.watch(self._proc.pid, signal.SIGTERM)
        self._ps = psutil.Process(self._proc.pid)
        self.config = config
        self._wait_ready(config.workers, progress)

    def stop(self) -> None:
        """Stop the app and all its workers (safe to call from two threads: the second waits, then finds none)."""
        with self._stopping:
            proc = self._proc
            if proc is None:
                return
            stop_group(proc, signal.SIGTERM, timeout=10)
            if self._guardian is not None:
                self._guardian.forget(proc.pid)
            self._proc = None
            self._ps = None

    def restart(self, config: RunConfig, dsn: str | None, progress: Callable[[str], object] | None = None) -> None:
        """Stop and start again with `config` (same port)."""
        if progress:
            progress("stopping the app")
        self.stop()
        self.start(config, dsn, progress)

    @property
    def url(self) -> str:
        """Base URL of the running app."""
        assert self.port is not None
        return f"http://{HOST}:{self.port}"

    @property
    def alive(self) -> bool:
        """True while the app's supervisor process runs."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def exit_status(self) -> int | None:
        """The supervisor's exit status once it exited."""
        return self._proc.poll() if self._proc is not None else None

    def log_tail(self, lines: int = 8) -> list[str]:
        """The app's last log lines (for error messages), read from the end of its log."""
        return logfiles.tail(self.log_path, lines)

    # -- workers -----------------------------------------------------------------------------------------------

    def processes(self) -> AppProcesses | None:
        """The supervisor and its workers, or None when the app is not running."""
        if self._ps is None or not self.alive:
            return None
        try:
            children = self._ps.children()
        except psutil.Error:
            return None
        workers = [c.pid for c in children if is_worker(c, self._ps)]
        # A single-process user app (stock `uvicorn app:app`) is its own worker.
        single = self.config is not None and self.config.workers == 1 and self.config.app is not None
        if not workers and single:
            workers = [self._ps.pid]
        return AppProcesses(self._ps.pid, sorted(workers))

    def worker_pids(self) -> list[int]:
        """Pids of the worker processes now."""
        procs = self.processes()
        return procs.workers if procs else []

    @property
    def supports_live_workers(self) -> bool:
        """True when the worker count changes by signal (the sample app, or any uvicorn multiprocess supervisor)."""
        procs = self.processes()
        return procs is not None and procs.supervisor not in procs.workers

    def set_workers(self, count: int) -> float:
        """Change the number of workers live (SIGTTIN/SIGTTOU), confirmed by counting; returns seconds taken."""
        if count < 1:
            raise UsageError("workers must be at least 1")
        assert self._proc is not None
        began = time.monotonic()
        current = len(self.worker_pids())
        sig = signal.SIGTTIN if count > current else signal.SIGTTOU
        for _ in range(abs(count - current)):
            os.kill(self._proc.pid, sig)
            # The supervisor handles queued signals every 0.5 s in order; a short gap keeps them distinct.
            time.sleep(0.01)
        deadline = time.monotonic() + WORKER_CHANGE_TIMEOUT
        while time.monotonic() < deadline:
            if len(self.worker_pids()) == count and self._workers_serving(count):
                if self.config is not None:
                    self.config = self.config.replace(workers=count)
                return time.monotonic() - began
            time.sleep(0.05)
        raise AppStartError(
            f"the app has {len(self.worker_pids())} workers, not {count}, after {WORKER_CHANGE_TIMEOUT:.0f} s"
        )

    def _workers_serving(self, count: int) -> bool:
        """True when every worker has published stats (so it runs its lifespan), or the app publishes none."""
        pids = self.worker_pids()
        published = {p.stem for p in self.stats_dir.glob("*.json")}
        if not published:
            return True
        return all(str(pid) in published for pid in pids)

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/", timeout=1):  # noqa: S310 (loopback URL we built)
                return True
        except urllib.error.HTTPError:
            return True  # any HTTP answer, even 404, means the server serves
        except (OSError, urllib.error.URLError):
            return False

    def _wait_ready(self, workers: int, progress: Callable[[str], object] | None = None) -> None:
        began = time.monotonic()
        deadline = began + READY_TIMEOUT
        said = ""
        while time.monotonic() < deadline:
            if self._cancel.is_set():
                self.stop()
                raise AppStartError("the start was cancelled: loadtui is quitting")
            if progress:
                step = f"starting the app: {len(self.worker_pids())} of {workers} worker(s) up"
                if step != said:
                    progress(step)
                    said = step
            if not self.alive:
                status = self.exit_status
                tail = " | ".join(self.log_tail(6))
                self.stop()
                raise AppStartError(f"the app exited with status {status} before it was ready: {tail}")
            if self._answers() and len(self.worker_pids()) == workers and self._workers_serving(workers):
                return
            time.sleep(0.1)
        tail = " | ".join(self.log_tail(6))
        found = len(self.worker_pids())
        self.stop()
        raise AppStartError(
            f"the app was not ready within {READY_TIMEOUT:.0f} s ({found} of {workers} workers): {tail}"
        )


def wait_for_url(url: str, timeout: float = 10.0) -> bool:
    """True once `url` answers anything over HTTP within `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1):  # noqa: S310 (the user's --host, http(s) checked)
                return True
        except urllib.error.HTTPError:
            return True
        except (OSError, urllib.error.URLError):
            time.sleep(0.2)
    return False
