"""Watching the session's children for crashes: pure transitions from one second's observation to events.

The session looks at its app, load generator and database once a second and hands what it saw to a
:class:`HealthWatcher`; the watcher remembers what it already reported and returns what is new (an app that exited,
a worker that came or went, a load generator that died, a database lost and back). No I/O, so every transition is
unit-tested.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from loadtui.model import EventKind


@dataclass(frozen=True)
class Observation:
    """What the session saw in one second. None means "not managed" (no app of ours, no database...)."""

    changing: bool = False
    """A worker change or restart is in progress: processes come and go on purpose."""
    app_alive: bool | None = None
    app_status: int | None = None
    """The app's exit status once it exited."""
    workers: tuple[int, ...] = ()
    loadgen_alive: bool | None = None
    loadgen_error: str | None = None
    db_error: str | None = None
    has_db: bool = False


@dataclass(frozen=True)
class Notice:
    """An event to record."""

    kind: EventKind
    message: str
    data: dict[str, Any] = field(default_factory=dict)


class HealthWatcher:
    """Remembers what was reported, so each crash, loss and return is told once."""

    def __init__(self, workers: Iterable[int] = ()) -> None:
        self.known_workers: set[int] = set(workers)
        self.app_exit_reported = False
        self.loadgen_dead_reported = False
        self.db_down = False
        self.failed: str | None = None
        """Why the run failed (the app or the load generator died), for exit status 1; None while all is well."""

    def app_started(self, workers: Iterable[int]) -> None:
        """The app was (re)started with these workers: forget its earlier exit."""
        self.known_workers = set(workers)
        self.app_exit_reported = False
        self.failed = None

    def loadgen_started(self) -> None:
        """The load generator was (re)started."""
        self.loadgen_dead_reported = False
        self.failed = None

    def observe(self, seen: Observation) -> list[Notice]:
        """The events this second brings."""
        notices: list[Notice] = []
        if seen.app_alive is not None and not seen.changing:
            notices += self._app(seen)
        if seen.loadgen_alive is False and not seen.changing and not self.loadgen_dead_reported:
            self.loadgen_dead_reported = True
            self.failed = f"the load generator died: {seen.loadgen_error or 'no message'}"
            notices.append(Notice("loadgen-exited", self.failed))
        if seen.has_db:
            if seen.db_error and not self.db_down:
                self.db_down = True
                notices.append(Notice("db-lost", f"database unreachable: {seen.db_error}"))
            elif seen.db_error is None and self.db_down:
                self.db_down = False
                notices.append(Notice("db-back", "database reachable again"))
        return notices

    def _app(self, seen: Observation) -> list[Notice]:
        if not seen.app_alive:
            if self.app_exit_reported:
                return []
            self.app_exit_reported = True
            self.failed = f"the app exited with status {seen.app_status}"
            return [
                Notice(
                    "app-exited",
                    f"the app exited with status {seen.app_status}; press a to restart it",
                    {"status": seen.app_status},
                )
            ]
        current = set(seen.workers)
        notices = [
            Notice("worker-exited", f"worker {pid} exited", {"pid": pid})
            for pid in sorted(self.known_workers - current)
        ]
        if self.known_workers:
            notices += [
                Notice("worker-started", f"worker {pid} started", {"pid": pid})
                for pid in sorted(current - self.known_workers)
            ]
        self.known_workers = current
        return notices
