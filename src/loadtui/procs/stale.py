"""Temporary directories of sessions that were killed so hard that even their guardian died: found and removed.

Each session holds an exclusive lock on `<run dir>/.lock` while it lives; the PostgreSQL socket directories and
temporary clusters are in use while a `postgres` process names them on its command line. A directory that is
neither, and older than :data:`GRACE_S` (so a session that is just starting is never touched), is stale.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pwd
import shutil
import stat
import tempfile
import time
from pathlib import Path
from typing import IO

import psutil

SERVER_USER = "embedded_postgres"
"""The system user the embedded PostgreSQL runs as when loadtui runs as root (database.POSTGRES_SYSTEM_USER)."""

GRACE_S = 60.0
"""A directory younger than this may belong to a session that is starting: left alone."""


# pragma: no mutate start (the OS's own locks and processes: tests/integration)
def hold(run_dir: Path) -> IO[str]:
    """Lock `run_dir` for as long as the returned file stays open (the session's lifetime)."""
    lock = open(run_dir / ".lock", "w")  # noqa: SIM115 (held open: it is the lock)
    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return lock


# pragma: no mutate end
def _free(run_dir: Path) -> bool:
    """True when no live session holds `run_dir`'s lock (or it never had one).

    Never blocks: the lock is opened without following a link and without waiting (a FIFO planted as `.lock` would
    wait for a writer forever), and anything but a plain file counts as held (left alone)."""
    try:
        fd = os.open(run_dir / ".lock", os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return False
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    return True


# pragma: no mutate start
def _named_by_postgres() -> set[str]:
    """Every argument of every running `postgres`: the socket and data directories in use."""
    named: set[str] = set()
    for proc in psutil.process_iter(["name", "cmdline"]):
        if proc.info.get("name") == "postgres":
            named.update(proc.info.get("cmdline") or [])
    return named


# pragma: no mutate end
def owners(server_user: str | None = SERVER_USER) -> set[int]:
    """Whose directories a sweep may remove: ours; as root, also those of the system user the embedded server runs
    as (root gives its socket directories to it)."""
    uids = {os.geteuid()}
    if os.geteuid() == 0 and server_user is not None:
        with contextlib.suppress(KeyError):
            uids.add(pwd.getpwnam(server_user).pw_uid)
    return uids


def sweep(
    state_dir: Path | None = None,
    tmp: Path | None = None,
    now: float | None = None,
    uids: set[int] | None = None,
    in_use: set[str] | None = None,
) -> list[Path]:
    """Remove our stale temporary directories; return those removed. Another user's directory is never opened.

    `in_use`: the paths running PostgreSQL servers name (default: read from the processes)."""
    tmp = tmp or Path(tempfile.gettempdir())
    now = time.time() if now is None else now
    uids = owners() if uids is None else uids
    in_use = _named_by_postgres() if in_use is None else in_use

    def mine(path: Path) -> bool:
        with contextlib.suppress(OSError):
            st = path.lstat()
            return st.st_uid in uids and stat.S_ISDIR(st.st_mode)
        return False

    candidates = [(d, _free(d)) for d in tmp.glob("loadtui-run-*") if mine(d)]
    candidates += [(d, str(d) not in in_use) for d in tmp.glob("loadtui-pg-*")]
    if state_dir is not None:
        candidates += [(d, str(d / "data") not in in_use) for d in state_dir.glob("cluster-*")]
    removed = []
    for path, unused in candidates:
        with contextlib.suppress(OSError):
            st = path.lstat()
            if not unused or not path.is_dir() or path.is_symlink() or st.st_uid not in uids:
                continue
            if now - st.st_mtime < GRACE_S:
                continue
            shutil.rmtree(path)
            removed.append(path)
    return removed
