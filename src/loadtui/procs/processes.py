"""Starting and stopping child processes so that none outlives loadtui (DESIGN 4.4).

Every child runs in its own session (so a Ctrl-C in the terminal reaches loadtui only, and a whole tree can be
signalled as one group), through the exec launcher (parent-death signal), and is registered with the guardian,
which cleans up if loadtui is killed.

The parent-death signal fires when the *thread* that started the child exits: start children only from a thread
that lives as long as the session (the main thread or the session's own loop thread).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from typing import IO, Any

_Stream = int | IO[Any] | None


def launcher_argv(
    argv: Sequence[str], pdeathsig: signal.Signals = signal.SIGTERM, user: str | None = None
) -> list[str]:
    """The argument list that runs `argv` behind the exec launcher (as `user`, if given)."""
    prefix = [sys.executable, "-m", "loadtui.procs.launch", "--pdeathsig", pdeathsig.name]
    if user is not None:
        prefix += ["--user", user]
    return [*prefix, "--", *argv]


def spawn(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    stdin: _Stream = subprocess.DEVNULL,
    stdout: _Stream = subprocess.DEVNULL,
    stderr: _Stream = subprocess.DEVNULL,
    user: str | None = None,
    pdeathsig: signal.Signals = signal.SIGTERM,
    text: bool = False,
    pass_fds: Sequence[int] = (),
) -> subprocess.Popen[Any]:
    """Start `argv` (an argument list, never a shell string) in a new session behind the exec launcher.

    `pass_fds` stay open in the child (a private pipe, say); every other descriptor is closed.
    """
    return subprocess.Popen(
        launcher_argv(argv, pdeathsig, user),
        env=dict(env) if env is not None else None,
        cwd=cwd,
        stdin=stdin,
        stdout=stdout,
        stderr=stderr,
        start_new_session=True,
        close_fds=True,
        pass_fds=tuple(pass_fds),
        text=text,
    )


def stop_group(proc: subprocess.Popen[Any], signum: int = signal.SIGTERM, timeout: float = 5.0) -> int | None:
    """Signal the process group led by `proc`, wait up to `timeout` for the leader, then SIGKILL the whole group.

    Returns the leader's exit status, or None if it had to be killed.
    """
    pgid = proc.pid
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        pass
    try:
        status: int | None = proc.wait(timeout)
    except subprocess.TimeoutExpired:
        status = None
    # Workers of a supervisor may outlive it by a moment; never leave one behind.
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.02)
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    if status is None:
        proc.wait()
    return status


class Guardian:
    """Client side of :mod:`loadtui.procs.guardian`: start it, tell it what to watch, close it on exit."""

    def __init__(self) -> None:
        self._proc: subprocess.Popen[str] | None = None

    def start(self) -> None:
        """Start the guardian process (its own session; it must outlive us to do its job)."""
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "loadtui.procs.guardian"],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            close_fds=True,
            text=True,
        )

    @property
    def pid(self) -> int | None:
        """The guardian's pid, for tests and the session log."""
        return self._proc.pid if self._proc else None

    def _send(self, line: str) -> None:
        if self._proc is None or self._proc.stdin is None:
            return
        try:
            self._proc.stdin.write(line + "\n")
            self._proc.stdin.flush()
        except (BrokenPipeError, ValueError):
            pass

    def watch(self, pgid: int, signum: int = signal.SIGTERM) -> None:
        """Have the guardian stop group `pgid` with `signum` (then SIGKILL) if loadtui dies."""
        self._send(f"watch {pgid} {int(signum)}")

    def remove_on_exit(self, directory: os.PathLike[str] | str) -> None:
        """Have the guardian delete this temporary directory when loadtui is gone, however it ended."""
        self._send(f"remove {os.fspath(directory)}")

    def forget(self, pgid: int) -> None:
        """The group was stopped in order; the guardian need not touch it."""
        self._send(f"forget {pgid}")

    def close(self, timeout: float = 10.0) -> None:
        """Close the pipe (the guardian then stops whatever is still watched) and wait for it."""
        if self._proc is None:
            return
        if self._proc.stdin is not None:
            try:
                self._proc.stdin.close()
            except BrokenPipeError:
                pass
        try:
            self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._proc = None


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on `host` right now (the app's, the Locust master's)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])
