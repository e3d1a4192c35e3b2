"""Load by arrival rate in one load-generator process (child-only: gevent and Locust).

:class:`OpenModel` runs a scheduler greenlet that starts one task of the locustfile at each arrival
(:class:`~loadtui.loadgen.arrivals.Schedule`), on a user instance from a pool that grows as needed up to
`max_in_flight`. The user classes' `wait_time` is not used: the schedule is the pacing. Every request fired while an
arrival runs has its `response_time` raised by how late the arrival started, before Locust's statistics see it, so
every figure Locust keeps (percentiles, per endpoint, summed over workers) is measured from the intended start; the
requests' own times go to :attr:`OpenModel.counters` (`service`).
"""

from __future__ import annotations

import logging
import random
import sys
import time
from typing import Any

import gevent
from gevent.pool import Group
from locust.exception import InterruptTaskSet, RescheduleTask, RescheduleTaskImmediately, StopUser
from locust.user.task import DefaultTaskSet, TaskSet

from loadtui.loadgen.arrivals import Arrivals, OpenCounters, Pool, Schedule, corrected_ms, round_ms

log = logging.getLogger(__name__)


def _weights(classes: list[Any]) -> list[float]:
    return [max(0.0, float(getattr(c, "weight", 1) or 0)) or 1.0 for c in classes]


def run_one_task(user: Any) -> None:
    """One task of `user`, chosen by weight as Locust chooses; a nested TaskSet runs one of its own tasks."""
    root: Any = DefaultTaskSet(user)
    task = root.get_next_task()
    if isinstance(task, type) and issubclass(task, TaskSet):
        nested: Any = task(user)
        nested.execute_task(nested.get_next_task())
    else:
        root.execute_task(task)


class OpenModel:
    """Arrivals at a rate, each on a free user instance; late starts charged to the requests' latency."""

    def __init__(self, env: Any, classes: list[Any], max_in_flight: int, clock: Any = time.monotonic) -> None:
        self.env = env
        self.classes = classes
        for cls in classes:
            if env.host:
                cls.host = env.host  # as Locust's runners do before they spawn users
        self._clock = clock
        self._weights = _weights(classes)
        self.pool = Pool(self._new_user, max_in_flight)
        self.counters = OpenCounters()
        self.schedule = Schedule(0.0, clock())
        self._late: dict[int, float] = {}
        """Seconds each running arrival started late, by its greenlet's id."""
        self._started_users: set[int] = set()
        self._scheduler: Any = None
        self._running = Group()
        self._wrap_request_event()

    def _new_user(self) -> Any:
        cls = random.choices(self.classes, weights=self._weights)[0]  # noqa: S311 (which class, not a secret)
        return cls(self.env)

    def _wrap_request_event(self) -> None:
        hook = self.env.events.request
        fire = hook.fire

        def late_fire(*, reverse: bool = False, **kw: Any) -> None:
            late = self._late.get(id(gevent.getcurrent()))
            service = kw.get("response_time")
            if late is not None and isinstance(service, (int, float)):
                self.counters.service[round_ms(service)] += 1
                kw["response_time"] = corrected_ms(service, 0.0, late)
            fire(reverse=reverse, **kw)

        hook.fire = late_fire

    # -- control -----------------------------------------------------------------------------------------------

    def set_rate(self, rate: float, arrivals: Arrivals, max_in_flight: int) -> None:
        """Arrivals at `rate` per second from now on (0 stops new ones; those running finish)."""
        now = self._clock()
        if arrivals != self.schedule.arrivals:
            self.schedule = Schedule(0.0, now, arrivals)
        self.pool.limit = max(1, max_in_flight)
        self.schedule.set_rate(rate, now)
        self.counters.target_rate = self.schedule.rate
        if rate > 0 and (self._scheduler is None or self._scheduler.dead):
            self._scheduler = gevent.spawn(self._run)

    def stop(self) -> None:
        """No more arrivals; the running ones are stopped too (a pause)."""
        self.schedule.set_rate(0.0, self._clock())
        self.counters.target_rate = 0.0
        if self._scheduler is not None:
            self._scheduler.kill(block=False)
            self._scheduler = None
        self._running.kill(block=False)

    def users(self) -> list[Any]:
        """Every user instance of the pool (for moving their connections)."""
        return list(self.pool.all)

    # -- the arrivals --------------------------------------------------------------------------------------------

    def _run(self) -> None:
        while self.schedule.rate > 0:
            gevent.sleep(max(0.0, min(0.05, self.schedule.next - self._clock())))
            for intended in self.schedule.due(self._clock()):
                self.counters.due += 1
                user = self.pool.take()
                if user is None:
                    self.counters.dropped += 1
                    continue
                self.counters.in_flight = self.pool.running
                self.counters.users = len(self.pool.all)
                self._running.spawn(self._arrival, user, intended)

    def _arrival(self, user: Any, intended: float) -> None:
        me = id(gevent.getcurrent())
        self._late[me] = max(0.0, self._clock() - intended)
        keep = True
        try:
            if id(user) not in self._started_users:
                self._started_users.add(id(user))
                user.on_start()
            run_one_task(user)
        except (RescheduleTask, RescheduleTaskImmediately, InterruptTaskSet):
            pass
        except StopUser:
            keep = False
            self._started_users.discard(id(user))
        except gevent.GreenletExit:
            raise
        except Exception as exc:  # the user's task may raise anything: Locust's own handling reports it
            self.env.events.user_error.fire(user_instance=user, exception=exc, tb=sys.exc_info()[2])
            log.error("task of %s failed: %s: %s", type(user).__name__, type(exc).__name__, exc)
        finally:
            self._late.pop(me, None)
            self.counters.completed += 1
            self.pool.give_back(user, keep)
            self.counters.in_flight = self.pool.running
            self.counters.users = len(self.pool.all)
