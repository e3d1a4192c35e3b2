"""The load generator, seen from the session: a child process running a Locust runner (see :mod:`.runner`).

This side never imports Locust. It starts the child, sends it commands, and hands each per-second stats record to
a callback from a reader thread.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from loadtui.config import RunConfig
from loadtui.errors import UsageError
from loadtui.procs import logfiles
from loadtui.procs.processes import Guardian, spawn, stop_group

READY_TIMEOUT = 30.0
"""Deadline for the child to import the locustfile and (with several processes) gather its workers."""


def bundled_locustfile() -> Path:
    """The sample app's locustfile (installed with loadtui)."""
    import importlib.util

    spec = importlib.util.find_spec("sample_app")
    if spec is None or spec.origin is None:
        raise LoadGenError("the bundled sample_app is not installed; reinstall loadtui")
    return Path(spec.origin).with_name("locustfile.py")


class LoadGenError(RuntimeError):
    """The load generator failed (broken locustfile, workers never connected, died)."""


class LoadGen:
    """One load-generator child process."""

    def __init__(
        self,
        *,
        host: str,
        locustfile: Path,
        scenario: str | None,
        user_classes: list[str] | None = None,
        processes: int = 1,
        master_bind: str | None = None,
        expect_remote_workers: int = 0,
        guardian: Guardian | None = None,
        on_stats: Callable[[dict[str, Any]], None] | None = None,
        stderr_path: Path | None = None,
    ) -> None:
        self.host = host
        self.locustfile = locustfile
        self.scenario = scenario
        self.user_classes = user_classes or []
        self.processes = processes
        self.master_bind = master_bind
        self.expect_remote_workers = expect_remote_workers
        self._guardian = guardian
        self._on_stats = on_stats
        self._stderr_path = stderr_path
        self._proc: subprocess.Popen[str] | None = None
        self._ready = threading.Event()
        self._error: str | None = None
        self._reader: threading.Thread | None = None
        self.pids: list[int] = []
        """The child's pid and its worker processes' pids."""
        self.master_port: int | None = None
        """Where remote Locust workers connect, when the master is bound for them."""
        self.stderr_tail: deque[str] = deque(maxlen=20)
        self._protocol: Any = None
        self.malformed = 0
        """Lines on the protocol pipe that were not a record (counted, skipped)."""

    # -- lifecycle ---------------------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the child and wait until it is ready; raise UsageError for a broken locustfile."""
        argv = [
            sys.executable,
            "-m",
            "loadtui.loadgen.runner",
            "--locustfile",
            str(self.locustfile),
            "--host",
            self.host,
            "--processes",
            str(self.processes),
        ]
        for name in self.user_classes:
            argv += ["--user-class", name]
        if self.scenario and not self.user_classes:
            argv += ["--scenario", self.scenario]
        if self.master_bind:
            host, _, port = self.master_bind.rpartition(":")
            argv += ["--master-bind", host or "127.0.0.1", "--master-port", port or "5557"]
        if self.expect_remote_workers:
            argv += ["--expect-workers", str(self.expect_remote_workers)]
        # The records travel on a private pipe: whatever the user's locustfile prints goes to the log with stderr.
        read_fd, write_fd = os.pipe()
        argv += ["--protocol-fd", str(write_fd)]
        stderr = open(self._stderr_path, "ab") if self._stderr_path else subprocess.DEVNULL  # noqa: SIM115
        try:
            self._proc = spawn(
                argv, stdin=subprocess.PIPE, stdout=stderr, stderr=stderr, text=True, pass_fds=(write_fd,)
            )
        finally:
            os.close(write_fd)
            if self._stderr_path:
                stderr.close()  # type: ignore[union-attr]
        self._protocol = os.fdopen(read_fd, "r", encoding="utf-8")
        if self._guardian is not None:
            self._guardian.watch(self._proc.pid, signal.SIGTERM)
        self._reader = threading.Thread(target=self._read, name="loadgen-reader", daemon=True)
        self._reader.start()
        deadline = time.monotonic() + READY_TIMEOUT
        while not self._ready.wait(0.05):
            if self._error is not None or self._proc.poll() is not None or time.monotonic() > deadline:
                break
        if not self._ready.is_set():
            # Give the reader a moment to pick up the child's last words.
            if self._reader is not None:
                self._reader.join(1.0)
            message = self._error or self._stderr_excerpt() or "the load generator did not start"
            self.stop()
            if "locustfile" in message:
                raise UsageError(message + "; fix it or pass another --locustfile")
            raise LoadGenError(message)

    def _stderr_excerpt(self) -> str:
        lines = logfiles.tail(self._stderr_path, 1) if self._stderr_path else []
        return lines[-1].strip() if lines else ""

    @property
    def alive(self) -> bool:
        """True while the child runs."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def error(self) -> str | None:
        """The child's last error message, if any."""
        return self._error

    def set_users(self, users: int, spawn_rate: float) -> None:
        """Start, or change the user count of, the running test (users 0 stops it)."""
        if users <= 0:
            self._send({"cmd": "stop"})
        else:
            self._send({"cmd": "start", "users": users, "spawn_rate": spawn_rate})

    def set_rate(self, rate: float, arrivals: str = "uniform", max_in_flight: int = 1000) -> None:
        """Load by arrival rate (the open model): `rate` arrivals a second from now on (0 stops them)."""
        if rate <= 0:
            self._send({"cmd": "stop"})
        else:
            self._send({"cmd": "rate", "rate": rate, "arrivals": arrivals, "max_in_flight": max_in_flight})

    def drive(self, config: RunConfig) -> None:
        """Send the load `config` asks for: arrivals at its rate, or its users."""
        if config.rate is not None:
            self.set_rate(config.rate, config.arrivals, config.max_in_flight)
        else:
            self.set_users(config.users, config.spawn_rate)

    def reconnect(self, ports: list[int] | None = None, spread: float = 0.5, fraction: float = 1.0) -> None:
        """Make the users whose connections have these local `ports` (all when None) reconnect, `spread` s apart.

        `fraction`: the share of users to move among those whose connections the child cannot inspect.
        """
        command: dict[str, Any] = {"cmd": "reconnect", "spread": spread, "fraction": fraction}
        if ports is not None:
            command["ports"] = ports
        self._send(command)

    def draining(self, seconds: float) -> None:
        """Tell the child a worker is being removed: requests it drops unread are retried for `seconds`."""
        self._send({"cmd": "draining", "seconds": seconds})

    def stop_users(self) -> None:
        """Stop all users (the child keeps running)."""
        self._send({"cmd": "stop"})

    def stop(self) -> None:
        """Quit the child (end of input), and make sure its whole group is gone."""
        if self._proc is None:
            return
        if self._proc.stdin is not None:
            try:
                self._proc.stdin.close()
            except (BrokenPipeError, OSError):
                pass
        try:
            self._proc.wait(5)
        except subprocess.TimeoutExpired:
            pass
        stop_group(self._proc, signal.SIGTERM, timeout=3)
        if self._guardian is not None:
            self._guardian.forget(self._proc.pid)
        self._proc = None

    # -- internals ---------------------------------------------------------------------------------------------

    def _send(self, command: dict[str, Any]) -> None:
        if self._proc is None or self._proc.stdin is None:
            return
        try:
            self._proc.stdin.write(json.dumps(command) + "\n")
            self._proc.stdin.flush()
        except (BrokenPipeError, OSError, ValueError):
            self._error = self._error or "the load generator is gone"

    def _read(self) -> None:
        assert self._protocol is not None
        for line in self._protocol:
            try:
                record = json.loads(line)
            except ValueError:
                record = None
            if not isinstance(record, dict):
                self.malformed += 1  # never the end of the measurements
                continue
            kind = record.get("type")
            if kind == "ready":
                self.pids = [int(p) for p in record.get("pids", [])]
                self.master_port = record.get("master_port")
                self._ready.set()
            elif kind == "error":
                self._error = str(record.get("message"))
            elif kind == "stats" and self._on_stats is not None:
                self._on_stats(record)
