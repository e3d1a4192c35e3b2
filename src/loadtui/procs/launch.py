"""Exec launcher: `python -m loadtui.procs.launch [--user NAME] [--pdeathsig SIG] -- COMMAND ...`.

Drops privileges to NAME if asked, sets the Linux parent-death signal and then replaces itself with COMMAND, so the
child is signalled when the thread that started it goes away, even on SIGKILL of loadtui. It exists because
`preexec_fn` is unsafe in threaded programs, and because the parent-death signal is cleared by any change of user
id: so the user changes here first, then the signal is set, then COMMAND runs.
"""

from __future__ import annotations

import ctypes
import os
import pwd
import signal
import sys

_PR_SET_PDEATHSIG = 1


def set_parent_death_signal(signum: int) -> None:
    """Ask the kernel to send `signum` to this process when its parent thread exits (Linux only; no-op elsewhere)."""
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signum, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")


def main(argv: list[str]) -> None:
    """Parse `[--user NAME] [--pdeathsig NAME] -- COMMAND...`, switch user, set the signal, exec COMMAND."""
    signum = int(signal.SIGTERM)
    user: str | None = None
    while argv[:1] in (["--pdeathsig"], ["--user"]):
        if argv[0] == "--user":
            user = argv[1]
        else:
            signum = int(signal.Signals["SIG" + argv[1].removeprefix("SIG")])
        argv = argv[2:]
    if argv[:1] == ["--"]:
        argv = argv[1:]
    if not argv:
        sys.stderr.write("usage: python -m loadtui.procs.launch [--pdeathsig SIG] -- COMMAND [ARG...]\n")
        raise SystemExit(2)
    if user is not None:
        entry = pwd.getpwnam(user)
        os.setgroups([])
        os.setgid(entry.pw_gid)
        os.setuid(entry.pw_uid)
        os.environ["HOME"] = entry.pw_dir
    set_parent_death_signal(signum)
    # The parent may already be gone (a race between fork and prctl): then exit instead of living as an orphan.
    if os.getppid() == 1:
        raise SystemExit(1)
    try:
        os.execvp(argv[0], argv)  # noqa: S606 (an argument list, never a shell: replacing ourselves is the point)
    except OSError as exc:  # one line the parent shows the user, not our traceback
        sys.stderr.write(f"loadtui: cannot run {argv[0]}: {exc.strerror or exc}\n")
        raise SystemExit(127) from None


if __name__ == "__main__":
    main(sys.argv[1:])
