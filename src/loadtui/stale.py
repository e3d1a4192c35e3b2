"""Temporary directories of sessions that were killed so hard that even their guardian died: found and removed.

Each session holds an exclusive lock on `<run dir>/.lock` while it lives; the PostgreSQL socket directories and
temporary clusters are in use while a `postgres` process names them on its command line. A directory that is
neither, and older than :data:`GRACE_S` (so a session that is just starting is never touched), is stale.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import IO

import psutil

GRACE_S = 60.0
"""A directory younger than this may belong to a session that is starting: left alone."""


def hold(run_dir: Path) -> IO[str]:
    """Lock `run_dir` for as long as the returned file stays open (the session's lifetime)."""
    lock = open(run_dir / ".lock", "w")  # noqa: SIM115 (held open: it is the lock)
    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return lock


def _free(run_dir: Path) -> bool:
    """True when no live session holds `run_dir`'s lock (or it never had one)."""
    try:
        fd = os.open(run_dir / ".lock", os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    return True


def _named_by_postgres() -> set[str]:
    """Every argument of every running `postgres`: the socket and data directories in use."""
    named: set[str] = set()
    for proc in psutil.process_iter(["name", "cmdline"]):
        if proc.info.get("name") == "postgres":
            named.update(proc.info.get("cmdline") or [])
    return named


def sweep(state_dir: Path | None = None, tmp: Path | None = None, now: float | None = None) -> list[Path]:
    """Remove our stale temporary directories; return those removed."""
    tmp = tmp or Path(tempfile.gettempdir())
    now = time.time() if now is None else now
    in_use = _named_by_postgres()
    candidates = [(d, _free(d)) for d in tmp.glob("loadtui-run-*")]
    candidates += [(d, str(d) not in in_use) for d in tmp.glob("loadtui-pg-*")]
    if state_dir is not None:
        candidates += [(d, str(d / "data") not in in_use) for d in state_dir.glob("cluster-*")]
    removed = []
    for path, unused in candidates:
        with contextlib.suppress(OSError):
            st = path.lstat()
            if not unused or not path.is_dir() or path.is_symlink() or st.st_uid != os.geteuid():
                continue
            if now - st.st_mtime < GRACE_S:
                continue
            shutil.rmtree(path)
            removed.append(path)
    return removed
