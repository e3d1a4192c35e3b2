"""The bridge between the dashboard and a live Session: one long-lived control thread.

The session starts child processes whose parent-death signal is tied to the thread that started them, so every
session call that may start a process runs on this one thread, which lives until the session is closed. The UI
submits callables; results come back through callbacks that post messages. Nothing here imports Textual.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

from loadtui.errors import RunFailed, UsageError
from loadtui.session.core import Session

Job = Callable[[Session], Any]
Done = Callable[[str, bool, str, bool], object]
"""Callback(job name, ok, message, bad input)."""


class SessionController:
    """Runs a Session on its own thread and executes jobs on it in order."""

    def __init__(self, session: Session, on_done: Done, progress: Callable[[str], object]) -> None:
        self.session = session
        self._on_done = on_done
        self._progress = progress
        self._jobs: queue.Queue[tuple[str, Job] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="loadtui-control", daemon=True)
        self.opened = threading.Event()
        self.closed = threading.Event()

    def start(self) -> None:
        """Start the thread; it opens the session first."""
        self._thread.start()

    def submit(self, name: str, job: Job) -> None:
        """Run `job(session)` on the control thread after the jobs before it."""
        self._jobs.put((name, job))

    @property
    def busy(self) -> bool:
        """True while jobs are queued."""
        return not self._jobs.empty()

    def close(self, timeout: float = 30.0) -> None:
        """Close the session (stops everything it started) and wait for the thread.

        A job under way (a restart waiting for an app that never gets ready) is told to give up first."""
        self.session.abort()
        self._jobs.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        try:
            self.session.open(progress=self._progress)
        except (UsageError, RunFailed) as exc:
            self._on_done("open", False, str(exc), isinstance(exc, UsageError))
            self._drain_until_close()
            return
        except Exception as exc:  # report, never die silently
            self._on_done("open", False, f"{type(exc).__name__}: {exc}", False)
            self._drain_until_close()
            return
        self.opened.set()
        self._on_done("open", True, "", False)
        while True:
            item = self._jobs.get()
            if item is None:
                break
            name, job = item
            try:
                result = job(self.session)
            except (UsageError, RunFailed) as exc:
                self._on_done(name, False, str(exc), isinstance(exc, UsageError))
            except Exception as exc:
                self._on_done(name, False, f"{type(exc).__name__}: {exc}", False)
            else:
                self._on_done(name, True, str(result) if result is not None else "", False)
        self.session.close()
        self.closed.set()

    def _drain_until_close(self) -> None:
        while self._jobs.get() is not None:
            pass
        self.session.close()
        self.closed.set()
