"""Stale temporary directories of killed sessions are swept at start; live, young and foreign ones are not."""

from __future__ import annotations

import os
import time
from pathlib import Path

from loadtui.procs import stale


def aged(path: Path, seconds: float = 3600) -> Path:
    path.mkdir(parents=True)
    (path / "file").write_text("x")
    old = time.time() - seconds
    os.utime(path, (old, old))
    return path


def test_only_stale_directories_are_removed(tmp_path: Path) -> None:
    tmp, state = tmp_path / "tmp", tmp_path / "state"
    dead = aged(tmp / "loadtui-run-dead")
    live = aged(tmp / "loadtui-run-live")
    lock = stale.hold(live)
    os.utime(live, (time.time() - 3600, time.time() - 3600))
    young = tmp / "loadtui-run-young"
    young.mkdir(parents=True)
    socket_dir = aged(tmp / "loadtui-pg-dead")
    cluster = aged(state / "cluster-dead")
    target = aged(tmp_path / "precious")
    (tmp / "loadtui-run-link").symlink_to(target)
    other = aged(tmp / "someone-else")
    try:
        removed = stale.sweep(state, tmp)
    finally:
        lock.close()
    assert sorted(removed) == sorted([dead, socket_dir, cluster])
    assert live.exists() and young.exists() and (target / "file").exists() and other.exists()
    assert stale.sweep(state, tmp) == [live]  # its lock is free now: the session that held it is gone


def test_a_fifo_planted_as_a_lock_never_blocks_the_sweep(tmp_path: Path) -> None:
    import threading

    tmp = tmp_path / "tmp"
    trap = aged(tmp / "loadtui-run-trap")
    os.mkfifo(trap / ".lock")
    os.utime(trap, (time.time() - 3600, time.time() - 3600))
    result: list[list[Path]] = []
    worker = threading.Thread(target=lambda: result.append(stale.sweep(None, tmp)), daemon=True)
    worker.start()
    worker.join(5)
    assert result == [[]], "the sweep blocked on a FIFO (or removed a directory it could not prove stale)"
    assert trap.exists()


def test_only_the_given_owners_directories_are_looked_at(tmp_path: Path) -> None:
    tmp = tmp_path / "tmp"
    dead = aged(tmp / "loadtui-run-dead")
    assert stale.sweep(None, tmp, uids={os.geteuid() + 1}) == []  # another user's: left alone, never opened
    assert stale.sweep(None, tmp, uids={os.geteuid()}) == [dead]
    assert os.geteuid() in stale.owners(None)


def test_a_directory_a_running_server_names_is_kept_however_old(tmp_path: Path) -> None:
    tmp, state = tmp_path / "tmp", tmp_path / "state"
    socket_dir = aged(tmp / "loadtui-pg-live")
    cluster = aged(state / "cluster-live")
    dead_socket, dead_cluster = aged(tmp / "loadtui-pg-dead"), aged(state / "cluster-dead")
    in_use = {str(socket_dir), str(cluster / "data"), "-D"}
    removed = stale.sweep(state, tmp, uids={os.geteuid()}, in_use=in_use)
    assert sorted(removed) == sorted([dead_socket, dead_cluster])
    assert socket_dir.exists() and cluster.exists()


def test_a_directory_is_stale_from_a_minute_old(tmp_path: Path) -> None:
    tmp = tmp_path / "tmp"
    dead = aged(tmp / "loadtui-run-dead", seconds=0)
    mtime = dead.stat().st_mtime
    assert stale.sweep(None, tmp, now=mtime + 59.5, uids={os.geteuid()}, in_use=set()) == []
    assert stale.sweep(None, tmp, now=mtime + 60.0, uids={os.geteuid()}, in_use=set()) == [dead]


def test_a_lock_planted_as_a_link_counts_as_held(tmp_path: Path) -> None:
    tmp = tmp_path / "tmp"
    target = tmp_path / "elsewhere"
    target.write_text("")
    trap = aged(tmp / "loadtui-run-trap")
    (trap / ".lock").symlink_to(target)
    os.utime(trap, (time.time() - 3600, time.time() - 3600))
    assert stale.sweep(None, tmp, uids={os.geteuid()}, in_use=set()) == []
    assert trap.exists() and target.exists()
