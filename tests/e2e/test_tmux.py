"""End to end in a real terminal: loadtui in tmux, live numbers, keys, every way of leaving it, and replay."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from loadtui.results.recorder import read_log
from tests.helpers import descendants_alive, wait_for, write_session_log

SESSION = "loadtui-e2e"
LOADTUI = str(Path(sys.executable).with_name("loadtui"))


def tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], capture_output=True, text=True, check=False).stdout


@pytest.fixture
def terminal() -> Iterator[None]:
    assert shutil.which("tmux"), "tmux is needed (.ci/run installs it)"
    tmux("kill-session", "-t", SESSION)
    tmux("new-session", "-d", "-s", SESSION, "-x", "160", "-y", "48")
    yield
    tmux("kill-session", "-t", SESSION)


def screen() -> str:
    return tmux("capture-pane", "-p", "-t", SESSION)


def run_in_terminal(command: str) -> None:
    tmux("send-keys", "-t", SESSION, f"{command}; echo EXIT=$?", "Enter")


def dashboard_process() -> psutil.Process:
    """The loadtui process running in the pane (the shell's child)."""
    shell = psutil.Process(int(tmux("display-message", "-p", "-t", SESSION, "#{pane_pid}").strip()))
    return wait_for(lambda: next(iter(shell.children()), None), timeout=10, what="loadtui in the pane")


def test_dashboard_in_a_real_terminal(tmp_path: Path, terminal: None) -> None:
    record = tmp_path / "e2e.jsonl"
    run_in_terminal(f"cd {tmp_path} && {LOADTUI} --users 5 --record {record}")
    wait_for(lambda: "live · recording" in screen() and "req/s" in screen(), timeout=40, what="live numbers on screen")
    tmux("send-keys", "-t", SESSION, "+")
    wait_for(lambda: "2 worker(s)" in screen(), timeout=20, what="two worker rows on screen")

    def workers_in_log() -> bool:
        for line in reversed(record.read_text().splitlines()):
            if '"type":"tick"' in line:
                return len(json.loads(line)["workers"]) == 2
        return False

    wait_for(workers_in_log, timeout=10, what="the log's worker count to become 2")
    tree = [p.pid for p in dashboard_process().children(recursive=True)]
    tmux("send-keys", "-t", SESSION, "p")  # confirm with py-spy: the stacks of the busiest workers
    wait_for(lambda: "py-spy: worker" in screen(), timeout=20, what="the py-spy confirmation on screen")
    assert any(json.loads(line).get("kind") == "confirmation" for line in record.read_text().splitlines())
    tmux("send-keys", "-t", SESSION, "q")
    wait_for(lambda: "EXIT=0" in screen(), timeout=30, what="loadtui to exit with status 0")
    wait_for(lambda: not descendants_alive(tree), timeout=10, what="no process left behind")


def _ctrl_c_then_ctrl_q(proc: psutil.Process) -> None:
    tmux("send-keys", "-t", SESSION, "C-c")  # Textual: Ctrl-C says how to quit, it does not kill the UI
    wait_for(lambda: "ctrl+q" in screen().lower(), timeout=10, what="the hint to press ctrl+q")
    tmux("send-keys", "-t", SESSION, "C-q")


def _signal(sig: signal.Signals) -> object:
    return lambda proc: proc.send_signal(sig)


LEAVES = {
    "ctrl-c-then-ctrl-q": (_ctrl_c_then_ctrl_q, True),
    "sigint": (_signal(signal.SIGINT), True),
    "sighup": (_signal(signal.SIGHUP), True),
    "closed-terminal": (lambda proc: tmux("kill-session", "-t", SESSION), True),
    "sigkill": (_signal(signal.SIGKILL), False),
}


@pytest.mark.parametrize("how", list(LEAVES))
def test_no_process_outlives_the_dashboard(tmp_path: Path, terminal: None, how: str) -> None:
    leave, summarized = LEAVES[how]
    record = tmp_path / "s.jsonl"
    run_in_terminal(f"cd {tmp_path} && {LOADTUI} --users 2 --workers 2 --scenario ping --record {record}")
    wait_for(lambda: "live · recording" in screen() and "req/s" in screen(), timeout=40, what="live numbers")
    wait_for(lambda: '"type":"tick"' in record.read_text(), timeout=20, what="a second recorded")
    proc = dashboard_process()
    tree = [p.pid for p in proc.children(recursive=True)]
    assert len(tree) >= 5, tree  # guardian, PostgreSQL, app + 2 workers, load generator
    try:
        leave(proc)  # type: ignore[operator]
        wait_for(
            lambda: not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE, timeout=30, what="loadtui gone"
        )
        wait_for(lambda: not descendants_alive(tree), timeout=15, what=f"every child gone after {how}")
    finally:
        for leftover in descendants_alive([proc.pid, *tree]):  # a failed run must not leak into the next tests
            leftover.kill()
    log = read_log(record)
    assert log.ticks, "nothing recorded is lost"
    assert (log.summary is not None) is summarized


def test_replay_from_the_command_line(tmp_path: Path, terminal: None) -> None:
    log = write_session_log(tmp_path / "recorded.jsonl", segments=2, seconds=10)
    run_in_terminal(f"{LOADTUI} replay {log} --speed 4")
    wait_for(lambda: "replay" in screen() and "req/s" in screen(), timeout=20, what="the replay on screen")
    wait_for(lambda: "2,000" in screen() or "2000" in screen(), timeout=20, what="the second segment's 2000 req/s")
    tmux("send-keys", "-t", SESSION, "q")
    wait_for(lambda: "EXIT=0" in screen(), timeout=15, what="replay to exit with status 0")
