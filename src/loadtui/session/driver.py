"""The one driver of a live session, for the dashboard and headless alike: a long-lived control thread.

The session starts child processes whose parent-death signal is tied to the thread that started them, so every
session call that may start a process runs on this one thread, which lives until the session is closed. Front ends
submit jobs by name; results come back through `on_done`. Between jobs the driver steps a sweep's plan and confirms
each warning finding once with py-spy (`auto_confirm`); it opens the session first and closes it last, and keeps
the summary. Nothing here imports a front end.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any, Literal

from loadtui.errors import RunFailed, UsageError
from loadtui.model import Event
from loadtui.results.summary import Summary
from loadtui.session.core import Session
from loadtui.session.plan import PlanRunner

JobName = Literal[
    "open",
    "plan",
    "plan-step",
    "users",
    "rate",
    "workers",
    "scenario",
    "apply",
    "propose",
    "pause",
    "resume",
    "confirm",
    "auto-confirm",
    "mark",
]
"""Every job a front end or the driver runs on the control thread."""

Job = Callable[[Session], Any]
Done = Callable[[JobName, bool, str, bool], object]
"""Callback(job name, ok, message, bad input)."""

IDLE_S = 0.2
"""How often the driver looks at the plan while no job is queued."""


class Driver:
    """Runs a Session on its own thread: jobs in order, the plan and confirmations between them."""

    def __init__(
        self,
        session: Session,
        *,
        on_done: Done,
        progress: Callable[[str], object],
        plan: PlanRunner | None = None,
        auto_confirm: bool = False,
    ) -> None:
        self.session = session
        self.plan = plan
        self._on_done = on_done
        self._progress = progress
        self._auto_confirm = auto_confirm
        self._jobs: queue.Queue[tuple[JobName, Job] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="loadtui-control", daemon=True)
        self._confirmed: set[str] = set()
        self.cannot_confirm = False
        """Set once py-spy could not read a worker (no ptrace permission): later findings are not dumped."""
        self.opened = threading.Event()
        self.closed = threading.Event()
        self.open_error: UsageError | RunFailed | None = None
        """Why the session did not open (bad input, or a child that did not start)."""
        self.summary: Summary | None = None
        """The session's summary, once closed."""
        session.subscribe(on_event=self._on_event)

    def start(self) -> None:
        """Start the thread; it opens the session first."""
        self._thread.start()

    def submit(self, name: JobName, job: Job) -> None:
        """Run `job(session)` on the control thread after the jobs before it."""
        self._jobs.put((name, job))

    @property
    def busy(self) -> bool:
        """True while jobs are queued."""
        return not self._jobs.empty()

    def close(self, timeout: float = 30.0) -> Summary | None:
        """Close the session (stops everything it started) and wait for the thread; the summary.

        A job under way (a restart waiting for an app that never gets ready, a py-spy dump) gives up first."""
        self.session.abort()
        self._jobs.put(None)
        self._thread.join(timeout)
        return self.summary

    def _on_event(self, event: Event) -> None:
        """A warning finding started (and is not another's consequence): dump the busiest workers once."""
        if not self._auto_confirm or self.cannot_confirm or not should_confirm(event):
            return
        fid = str(event.data.get("id"))
        if fid not in self._confirmed:
            self._confirmed.add(fid)
            self.submit("auto-confirm", lambda s: s.confirm())

    def _job(self, name: JobName, job: Job, *, quiet: bool = False) -> None:
        """Run one job; tell `on_done` how it went (a `quiet` one only when it failed)."""
        try:
            result = job(self.session)
        except (UsageError, RunFailed) as exc:
            if name == "auto-confirm" and any(e.kind == "confirmation-failed" for e in self.session.events[-3:]):
                self.cannot_confirm = True  # no ptrace permission: said once (the event), then not tried again
            self._on_done(name, False, str(exc), isinstance(exc, UsageError))
        except Exception as exc:  # report, never die silently
            self._on_done(name, False, f"{type(exc).__name__}: {exc}", False)
        else:
            if not quiet:
                self._on_done(name, True, str(result) if result is not None else "", False)

    def _run(self) -> None:
        try:
            self.session.open(progress=self._progress)
        except (UsageError, RunFailed) as exc:
            self.open_error = exc
            self._on_done("open", False, str(exc), isinstance(exc, UsageError))
            self._until_close()
            return
        except Exception as exc:
            self.open_error = RunFailed(f"{type(exc).__name__}: {exc}")
            self._on_done("open", False, str(self.open_error), False)
            self._until_close()
            return
        self.opened.set()
        self._on_done("open", True, "", False)
        plan = self.plan
        if plan is not None:
            self._job("plan", plan.attach)
            if not plan.attached:
                plan.stop("refused")  # it never started: nothing will run
        while True:
            try:
                item = self._jobs.get(timeout=IDLE_S)
            except queue.Empty:
                if plan is not None and not plan.finished:
                    self._job("plan-step", lambda s: plan.poll(s, progress=self._progress), quiet=True)
                continue
            if item is None:
                break
            self._job(*item)
        self.summary = self.session.close()
        self.closed.set()

    def _until_close(self) -> None:
        while self._jobs.get() is not None:
            pass
        self.session.close()
        self.closed.set()


def should_confirm(event: Event) -> bool:
    """True for an event after which the workers' stacks are worth a look: a warning or critical finding started that
    is not the consequence of another (its cause's stacks already say it)."""
    return (
        event.kind == "finding-started"
        and event.data.get("severity") in ("warning", "critical")
        and not event.data.get("consequence_of")
    )
