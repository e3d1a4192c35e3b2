"""The children's own log files (the app's output, the load generator's stderr): read from the end, kept bounded.

A chatty app (an access log at thousands of requests a second) writes gigabytes over a long session into the run
directory; loadtui reads only the last lines (for error messages) and cuts a log down to its tail once it passes
:data:`MAX_BYTES`. The children write with O_APPEND, so after the cut they go on writing at the new end.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

MAX_BYTES = 64 * 2**20
"""A child's log is cut down to its last :data:`KEEP_BYTES` when it passes this size."""

KEEP_BYTES = 2**20

TAIL_BYTES = 64 * 2**10
"""How much of the end of a log the last lines are read from."""


def tail(path: Path, lines: int = 8) -> list[str]:
    """The last non-blank `lines` of the log at `path` (empty when it cannot be read), reading only its end."""
    try:
        with open(path, "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - TAIL_BYTES))
            text = f.read().decode(errors="replace")
    except OSError:
        return []
    return [line for line in text.splitlines() if line.strip()][-lines:]


def cap(path: Path, max_bytes: int = MAX_BYTES, keep_bytes: int = KEEP_BYTES) -> bool:
    """Cut the log at `path` down to its last `keep_bytes` once it is larger than `max_bytes`; True if it was cut."""
    with contextlib.suppress(OSError):
        if path.stat().st_size <= max_bytes:
            return False
        with open(path, "r+b") as f:
            f.seek(-keep_bytes, os.SEEK_END)
            kept = f.read()
            f.seek(0)
            f.write(b"--- loadtui: earlier lines cut (the log is kept under %d MiB)\n" % (max_bytes // 2**20) + kept)
            f.truncate()
        return True
    return False
