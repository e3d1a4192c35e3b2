"""The guardian: a tiny process that stops loadtui's children when loadtui itself cannot.

loadtui starts it first, in its own session, with a pipe on its standard input, and tells it about every process
group it starts (`watch PGID SIGNAL`) or stops itself (`forget PGID`). When the pipe closes — loadtui exited, crashed
or was SIGKILLed — the guardian sends each remaining group its polite signal, waits a little, then SIGKILLs what is
left. PostgreSQL gets SIGINT (fast shutdown), everything else SIGTERM. Then it removes the temporary directories it
was told about (`remove PATH`: the run directory, PostgreSQL's socket directory), which loadtui removes itself on a
clean exit but cannot after a SIGKILL.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import time

GRACE_SECONDS = 3.0
"""How long a group may take to exit after its polite signal before it is SIGKILLed."""


def group_alive(pgid: int) -> bool:
    """True while any process of the group exists (zombies included: they vanish when reaped)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_groups(groups: dict[int, int], grace: float = GRACE_SECONDS) -> None:
    """Send each group its signal, wait up to `grace` seconds for all of them, then SIGKILL the survivors."""
    for pgid, signum in groups.items():
        try:
            os.killpg(pgid, signum)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(group_alive(g) for g in groups):
        time.sleep(0.05)
    for pgid in groups:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass


class _CleanUpNow(Exception):
    """Raised by SIGTERM to leave the command loop at once."""


def _clean_up_now(_signum: int, _frame: object) -> None:
    raise _CleanUpNow


def main() -> None:
    """Read commands until end of input, then stop every group still watched."""
    # Terminal signals are for loadtui, which stops things in order; a SIGTERM to us means "clean up now".
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _clean_up_now)
    groups: dict[int, int] = {}
    directories: list[str] = []
    try:
        for line in sys.stdin:
            parts = line.split()
            if len(parts) == 3 and parts[0] == "watch":
                groups[int(parts[1])] = int(parts[2])
            elif len(parts) == 2 and parts[0] == "forget":
                groups.pop(int(parts[1]), None)
            elif line.startswith("remove "):
                directories.append(line[len("remove ") :].rstrip("\n"))
    except _CleanUpNow:
        pass
    if groups:
        stop_groups(groups)
    for directory in directories:  # after the groups: nothing writes there any more
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
