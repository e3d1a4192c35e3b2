"""Load by arrival rate in one load-generator process (child-only: gevent and Locust).

:class:`OpenModel` runs a scheduler greenlet that starts one task of the locustfile at each arrival
(:class:`~loadtui.loadgen.arrivals.Schedule`) on a client: a user instance with its own greenlet, waiting for its
next arrival, from a pool that grows as needed up to `max_in_flight` (:class:`~loadtui.loadgen.arrivals.Pool`).
Handing an arrival to a waiting greenlet costs a few microseconds; a new greenlet per arrival cost four times the
closed model's overhead per request, and the load generator's CPU with it. The user classes' `wait_time` is not used: the schedule is the pacing. Every request fired while an
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
from gevent.queue import Queue
from locust.exception import InterruptTaskSet, RescheduleTask, RescheduleTaskImmediately, StopUser
from locust.user.task import DefaultTaskSet, TaskSet

from loadtui.loadgen.arrivals import Arrivals, OpenCounters, Pool, Schedule, corrected_ms, round_ms

log = logging.getLogger(__name__)

WAKE_S = 0.001
"""The scheduler wakes at most this often and starts every arrival due by then: one timer a millisecond instead of
one per arrival (at 10,000 req/s that is the load generator's CPU). A start is at most this late, below the
millisecond Locust rounds latencies to."""


def _weights(classes: list[Any]) -> list[float]:
    return [max(0.0, float(getattr(c, "weight", 1) or 0)) or 1.0 for c in classes]


def run_one_task(user: Any) -> None:
    """One task of `user`, chosen by weight as Locust chooses; a nested TaskSet runs one of its own tasks."""
    root: Any = getattr(user, "_loadtui_root", None)
    if root is None:
        root = user._loadtui_root = DefaultTaskSet(user)
    task = root.get_next_task()
    if isinstance(task, type) and issubclass(task, TaskSet):
        nested: Any = task(user)
        nested.execute_task(nested.get_next_task())
    else:
        root.execute_task(task)


class Client:
    """A user instance and the greenlet that runs its arrivals, one at a time, as they are handed to it."""

    def __init__(self, model: OpenModel, user: Any) -> None:
        self.user = user
        self.inbox: Queue[float] = Queue()
        self.started = False
        self.greenlet = gevent.spawn(model._serve, self)


class OpenModel:
    """Arrivals at a rate, each on a free client; late starts charged to the requests' latency."""

    def __init__(self, env: Any, classes: list[Any], max_in_flight: int, clock: Any = time.monotonic) -> None:
        self.env = env
        self.classes = classes
        for cls in classes:
            if env.host:
                cls.host = env.host  # as Locust's runners do before they spawn users
        self._clock = clock
        self._weights = _weights(classes)
        self.pool = Pool(self._new_client, max_in_flight)
        self.counters = OpenCounters()
        self.schedule = Schedule(0.0, clock())
        self._late: dict[Any, float] = {}
        """Seconds the arrival each client's greenlet runs started late."""
        self._scheduler: Any = None
        self._wrap_request_event()

    def _new_client(self) -> Client:
        cls = random.choices(self.classes, weights=self._weights)[0]  # noqa: S311 (which class, not a secret)
        return Client(self, cls(self.env))

    def _wrap_request_event(self) -> None:
        hook = self.env.events.request
        fire = hook.fire
        late_of, service = self._late, self.counters.service

        def late_fire(*, reverse: bool = False, **kw: Any) -> None:
            late = late_of.get(gevent.getcurrent())
            took = kw.get("response_time")
            if late is not None and isinstance(took, (int, float)):
                service[round_ms(took)] += 1
                kw["response_time"] = corrected_ms(took, 0.0, late)
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
        """No more arrivals, and the running ones are stopped (a pause): every client is let go."""
        self.schedule.set_rate(0.0, self._clock())
        self.counters.target_rate = 0.0
        if self._scheduler is not None:
            self._scheduler.kill(block=True)
            self._scheduler = None
        clients = list(self.pool.all)
        gevent.killall([c.greenlet for c in clients], block=True, timeout=5)
        self._late.clear()
        self.pool = Pool(self._new_client, self.pool.limit)
        self.counters.in_flight = 0
        self.counters.users = 0

    def users(self) -> list[Any]:
        """Every user instance of the pool (for moving their connections)."""
        return [c.user for c in self.pool.all]

    # -- the arrivals --------------------------------------------------------------------------------------------

    def _run(self) -> None:
        counters = self.counters
        while self.schedule.rate > 0:
            gevent.sleep(max(WAKE_S, min(0.05, self.schedule.next - self._clock())))
            pool = self.pool
            for intended in self.schedule.due(self._clock()):
                counters.due += 1
                client = pool.take()
                if client is None:
                    counters.dropped += 1
                    continue
                client.inbox.put(intended)
            counters.in_flight = pool.running
            counters.users = len(pool.all)

    def _serve(self, client: Client) -> None:
        """A client's greenlet: run each arrival handed to it, then wait for the next."""
        me = gevent.getcurrent()
        user = client.user
        pool = self.pool
        while True:
            intended = client.inbox.get()
            self._late[me] = max(0.0, self._clock() - intended)
            keep = True
            try:
                if not client.started:
                    client.started = True
                    user.on_start()
                run_one_task(user)
            except (RescheduleTask, RescheduleTaskImmediately, InterruptTaskSet):
                pass
            except StopUser:
                keep = False
            except gevent.GreenletExit:
                raise
            except Exception as exc:  # the user's task may raise anything: Locust's own handling reports it
                self.env.events.user_error.fire(user_instance=user, exception=exc, tb=sys.exc_info()[2])
                log.error("task of %s failed: %s: %s", type(user).__name__, type(exc).__name__, exc)
            self._late.pop(me, None)
            self.counters.completed += 1
            pool.give_back(client, keep)
            if not keep:
                return
