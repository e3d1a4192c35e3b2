"""Crash watching as pure transitions: each exit, worker change, loss and return reported once."""

from __future__ import annotations

from loadtui.session.health import HealthWatcher, Observation


def kinds(watcher: HealthWatcher, seen: Observation) -> list[str]:
    return [n.kind for n in watcher.observe(seen)]


def test_an_app_exit_is_reported_once_and_fails_the_run_until_restarted() -> None:
    w = HealthWatcher([1, 2])
    assert kinds(w, Observation(app_alive=True, workers=(1, 2))) == []
    [notice] = w.observe(Observation(app_alive=False, app_status=-9))
    assert notice.kind == "app-exited" and "status -9; press a to restart it" in notice.message
    assert notice.data == {"status": -9}
    assert w.failed == "the app exited with status -9"
    assert kinds(w, Observation(app_alive=False, app_status=-9)) == []  # once
    w.app_started([3, 4])
    assert w.failed is None
    assert kinds(w, Observation(app_alive=True, workers=(3, 4))) == []


def test_workers_that_come_and_go_are_named_unless_a_change_is_under_way() -> None:
    w = HealthWatcher([1, 2])
    notices = w.observe(Observation(app_alive=True, workers=(1, 3)))
    assert [(n.kind, n.data["pid"]) for n in notices] == [("worker-exited", 2), ("worker-started", 3)]
    assert kinds(w, Observation(changing=True, app_alive=True, workers=(1, 3, 4))) == []
    assert kinds(w, Observation(changing=True, app_alive=False)) == []  # a restart stops the app on purpose
    assert w.failed is None


def test_the_first_workers_seen_are_not_news() -> None:
    w = HealthWatcher()
    assert kinds(w, Observation(app_alive=True, workers=(5, 6))) == []
    assert w.known_workers == {5, 6}


def test_a_dead_load_generator_is_reported_again_after_a_restart() -> None:
    w = HealthWatcher()
    [notice] = w.observe(Observation(loadgen_alive=False, loadgen_error="boom"))
    assert notice.message == "the load generator died: boom" and w.failed == notice.message
    assert kinds(w, Observation(loadgen_alive=False)) == []
    w.loadgen_started()  # c picked another scenario, or a restarted it
    assert w.failed is None
    assert kinds(w, Observation(loadgen_alive=False)) == ["loadgen-exited"]
    assert "no message" in (w.failed or "")


def test_database_lost_and_back() -> None:
    w = HealthWatcher()
    assert kinds(w, Observation(has_db=True)) == []
    assert kinds(w, Observation(has_db=True, db_error="connection refused")) == ["db-lost"]
    assert kinds(w, Observation(has_db=True, db_error="connection refused")) == []
    assert kinds(w, Observation(has_db=True)) == ["db-back"]
    assert kinds(w, Observation(has_db=False, db_error="x")) == []  # no database of ours to watch


def test_every_notice_in_words() -> None:
    from loadtui.session.health import HealthWatcher, Notice, Observation

    watch = HealthWatcher([1, 2])
    assert not watch.app_exit_reported and not watch.loadgen_dead_reported and not watch.db_down
    assert watch.observe(Observation(app_alive=True, workers=(2, 3), has_db=True)) == [
        Notice("worker-exited", "worker 1 exited", {"pid": 1}),
        Notice("worker-started", "worker 3 started", {"pid": 3}),
    ]
    assert watch.observe(Observation(app_alive=True, workers=(2, 3), changing=True, loadgen_alive=False)) == []
    assert watch.observe(Observation(loadgen_alive=False)) == [
        Notice("loadgen-exited", "the load generator died: no message")
    ]
    assert watch.observe(Observation(has_db=True, db_error="connection refused")) == [
        Notice("db-lost", "database unreachable: connection refused")
    ]
    assert watch.observe(Observation(has_db=True, db_error="connection refused")) == []
    assert watch.observe(Observation(has_db=True)) == [Notice("db-back", "database reachable again")]
    assert watch.observe(Observation(has_db=True)) == []
    assert watch.observe(Observation(app_alive=False, app_status=-9)) == [
        Notice("app-exited", "the app exited with status -9; press a to restart it", {"status": -9})
    ]
    assert watch.failed == "the app exited with status -9"
    watch.app_started([7])
    assert not watch.app_exit_reported and watch.failed is None and watch.known_workers == {7}
    watch.loadgen_started()
    assert not watch.loadgen_dead_reported
    assert watch.observe(Observation(loadgen_alive=False, loadgen_error="ImportError: x")) == [
        Notice("loadgen-exited", "the load generator died: ImportError: x")
    ]
