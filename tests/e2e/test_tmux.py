"""End to end in a real terminal: start loadtui in tmux, watch live numbers, add a worker, quit, nothing left."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import our_processes, wait_for

SESSION = "loadtui-e2e"


def tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], capture_output=True, text=True, check=False).stdout


@pytest.fixture
def terminal() -> object:
    assert shutil.which("tmux"), "tmux is needed (.ci/run installs it)"
    tmux("kill-session", "-t", SESSION)
    tmux("new-session", "-d", "-s", SESSION, "-x", "160", "-y", "48")
    yield
    tmux("kill-session", "-t", SESSION)


def screen() -> str:
    return tmux("capture-pane", "-p", "-t", SESSION)


def test_dashboard_in_a_real_terminal(tmp_path: Path, terminal: object) -> None:
    record = tmp_path / "e2e.jsonl"
    loadtui = str(Path(sys.executable).with_name("loadtui"))
    tmux("send-keys", "-t", SESSION, f"cd {tmp_path} && {loadtui} --users 5 --record {record}; echo EXIT=$?", "Enter")
    wait_for(lambda: "live · recording" in screen() and "req/s" in screen(), timeout=40, what="live numbers on screen")
    tmux("send-keys", "-t", SESSION, "+")
    wait_for(lambda: "2 worker(s)" in screen(), timeout=20, what="two worker rows on screen")

    def workers_in_log() -> bool:
        for line in reversed(record.read_text().splitlines()):
            if '"type":"tick"' in line:
                return len(json.loads(line)["workers"]) == 2
        return False

    wait_for(workers_in_log, timeout=10, what="the log's worker count to become 2")
    tmux("send-keys", "-t", SESSION, "q")
    wait_for(lambda: "EXIT=0" in screen(), timeout=30, what="loadtui to exit with status 0")
    wait_for(lambda: not our_processes(), timeout=10, what="no process left behind")
