"""The guardian removes the temporary directories it was told about once loadtui is gone, however it ended."""

from __future__ import annotations

from pathlib import Path

from loadtui.processes import Guardian
from tests.helpers import wait_for


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
