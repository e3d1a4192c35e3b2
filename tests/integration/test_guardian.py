"""The guardian removes the temporary directories it was told about once loadtui is gone, however it ended."""

from __future__ import annotations

from pathlib import Path

import pytest

from loadtui.procs.processes import Guardian
from tests.helpers import wait_for

pytestmark = pytest.mark.slow  # each test starts a Python process


def test_the_guardian_removes_registered_directories_when_its_pipe_closes(tmp_path: Path) -> None:
    run_dir = tmp_path / "loadtui-run-x"
    (run_dir / "appstats").mkdir(parents=True)
    (run_dir / "app.log").write_text("log")
    spaced = tmp_path / "a dir with spaces"
    spaced.mkdir()
    kept = tmp_path / "kept"
    kept.mkdir()
    guardian = Guardian()
    guardian.start()
    guardian.remove_on_exit(run_dir)
    guardian.remove_on_exit(spaced)
    guardian.close()  # what happens too when loadtui is SIGKILLed: the pipe closes
    wait_for(lambda: not run_dir.exists() and not spaced.exists(), timeout=10, what="the directories removed")
    assert kept.exists()


def test_a_sigterm_to_the_guardian_stops_what_it_watches_at_once(tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    run_dir = tmp_path / "loadtui-run-y"
    run_dir.mkdir()
    guardian = Guardian()
    guardian.start()
    try:
        guardian.watch(child.pid)
        guardian.remove_on_exit(run_dir)
        wchan = Path(f"/proc/{guardian.pid}/wchan")
        # Its commands are read once it blocks on the pipe again (the kernel names where it sleeps).
        wait_for(lambda: "pipe" in wchan.read_text(), timeout=10, what="the guardian waiting for commands")
        os.kill(guardian.pid or 0, signal.SIGTERM)  # the pipe stays open: only the signal can end it
        assert child.wait(timeout=10) is not None
        wait_for(lambda: not run_dir.exists(), timeout=10, what="the directory removed")
    finally:
        if child.poll() is None:
            child.kill()
        guardian.close()
