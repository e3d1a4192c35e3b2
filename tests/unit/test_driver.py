"""The one driver of both front ends, with a stand-in session: jobs in order on one thread, the open failing, the
plan stepped between jobs, each warning finding confirmed once, confirmation given up after py-spy cannot read,
and the summary kept at close."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, cast

import pytest

from loadtui.errors import RunFailed, UsageError
from loadtui.model import Event
from loadtui.session.core import Session
from loadtui.session.driver import Driver, JobName
from loadtui.session.plan import PlanRunner
from tests.helpers import wait_for


class StandSession:
    """What a Driver uses of a Session."""

    def __init__(self, open_error: Exception | None = None, confirm_error: str | None = None) -> None:
        self.open_error = open_error
        self.confirm_error = confirm_error
        self.threads: set[str] = set()
        self.on_event: list[Callable[[Event], object]] = []
        self.events: list[Event] = []
        self.confirmed = 0
        self.closed = False
        self.aborted = False

    def subscribe(self, on_tick: Any = None, on_event: Callable[[Event], object] | None = None) -> None:
        if on_event:
            self.on_event.append(on_event)

    def event(self, kind: str, message: str = "", **data: Any) -> None:
        ev = Event(0.0, kind, message, data)
        self.events.append(ev)
        for cb in self.on_event:
            cb(ev)

    def open(self, progress: Any = None) -> None:
        self.threads.add(threading.current_thread().name)
        if self.open_error is not None:
            raise self.open_error

    def confirm(self) -> str:
        self.threads.add(threading.current_thread().name)
        self.confirmed += 1
        if self.confirm_error:
            self.event("confirmation-failed", self.confirm_error)
            raise RunFailed(self.confirm_error)
        return "worker 1: event loop BUSY"

    def abort(self) -> None:
        self.aborted = True

    def close(self) -> str:
        self.threads.add(threading.current_thread().name)
        self.closed = True
        return "the summary"


class StandPlan:
    def __init__(self, refuse: bool = False) -> None:
        self.refuse = refuse
        self.attached = False
        self.finished = False
        self.polls = 0
        self.stopped: str | None = None

    def attach(self, session: Any) -> None:
        if self.refuse:
            raise UsageError("plan step “8 workers”: too many")
        self.attached = True

    def poll(self, session: Any, progress: Any = None) -> None:
        self.polls += 1
        if self.polls >= 3:
            self.finished = True

    def stop(self, why: str) -> None:
        self.stopped, self.finished = why, True


def drive(stand: StandSession, **kw: Any) -> tuple[Driver, list[tuple[JobName, bool, str, bool]]]:
    done: list[tuple[JobName, bool, str, bool]] = []
    driver = Driver(cast(Session, stand), on_done=lambda *a: done.append(a), progress=lambda _t: None, **kw)
    driver.start()
    return driver, done


def finding(fid: str, severity: str = "warning", consequence_of: str | None = None) -> dict[str, Any]:
    return {"id": fid, "severity": severity, "consequence_of": consequence_of}


def test_jobs_run_in_order_on_the_one_thread_that_opened_and_closes_the_session() -> None:
    stand = StandSession()
    driver, done = drive(stand)
    order: list[int] = []

    def job(i: int) -> Callable[[Session], None]:
        def run(_s: Session) -> None:
            order.append(i)
            stand.threads.add(threading.current_thread().name)

        return run

    for i in range(5):
        driver.submit("mark", job(i))
    wait_for(lambda: len(order) == 5, timeout=5, what="the jobs")
    assert cast(object, driver.close()) == "the summary" and stand.closed and stand.aborted
    assert order == [0, 1, 2, 3, 4] and stand.threads == {"loadtui-control"}
    assert done[0] == ("open", True, "", False) and [d[0] for d in done[1:]] == ["mark"] * 5


@pytest.mark.parametrize(("error", "bad_input"), [(UsageError("--dsn does not connect"), True),
                                                 (RunFailed("the app did not start"), False)])  # fmt: skip
def test_a_session_that_does_not_open_says_why_and_still_closes(error: Exception, bad_input: bool) -> None:
    stand = StandSession(open_error=error)
    driver, done = drive(stand)
    wait_for(lambda: done, timeout=5, what="the open to fail")
    assert done == [("open", False, str(error), bad_input)] and driver.open_error is error
    assert not driver.opened.is_set()
    driver.close()
    assert stand.closed


def test_the_plan_is_stepped_between_jobs_until_it_is_done_and_a_refused_plan_stops() -> None:
    plan = StandPlan()
    driver, _done = drive(StandSession(), plan=cast(PlanRunner, plan))
    wait_for(lambda: plan.finished, timeout=5, what="the plan")
    assert plan.attached and plan.polls == 3
    driver.close()
    refused = StandPlan(refuse=True)
    driver, done = drive(StandSession(), plan=cast(PlanRunner, refused))
    wait_for(lambda: refused.finished, timeout=5, what="the refusal")
    assert ("plan", False, "plan step “8 workers”: too many", True) in done and refused.polls == 0
    driver.close()


def test_each_warning_is_confirmed_once_and_a_consequence_or_information_never() -> None:
    stand = StandSession()
    driver, done = drive(stand, auto_confirm=True)
    wait_for(driver.opened.is_set, timeout=5, what="open")
    stand.event("finding-started", "", **finding("pool-exhausted"))
    stand.event("finding-started", "", **finding("pool-exhausted"))  # again (it ended and came back): not again
    stand.event("finding-started", "", **finding("queueing", consequence_of="pool-exhausted"))
    stand.event("finding-started", "", **finding("worker-imbalance", severity="info"))
    stand.event("finding-started", "", **finding("event-loop-blocked", severity="critical"))
    wait_for(lambda: stand.confirmed == 2, timeout=5, what="two confirmations")
    driver.close()
    assert stand.confirmed == 2 and [d[0] for d in done].count("auto-confirm") == 2


def test_confirmation_is_given_up_once_py_spy_cannot_read_the_workers() -> None:
    stand = StandSession(confirm_error="py-spy needs ptrace permission")
    driver, done = drive(stand, auto_confirm=True)
    wait_for(driver.opened.is_set, timeout=5, what="open")
    stand.event("finding-started", "", **finding("pool-exhausted"))
    wait_for(lambda: driver.cannot_confirm, timeout=5, what="the refusal")
    stand.event("finding-started", "", **finding("db-bound"))
    driver.close()
    assert stand.confirmed == 1
    assert ("auto-confirm", False, "py-spy needs ptrace permission", False) in done
