"""The open model's arithmetic: when arrivals are due, how late each one started, what a second counts. Pure.

With `--rate R` the load generator does not run users in a loop (Locust's closed model, where a slow answer delays
the next request). Arrivals are due at R per second whatever happened to the earlier ones — evenly spaced
(`uniform`, like wrk2) or as a Poisson process (`poisson`: exponential gaps, the way independent clients arrive).
Each runs one task of the locustfile on a free user instance; its requests' latency counts from the arrival's
*intended* time, so a stall of the app (or of the load generator) is charged to every request it delayed, not hidden
(coordinated omission). No gevent or Locust here: :mod:`.open_model` drives these with the real clock, the tests with
their own.
"""

from __future__ import annotations

import math
import random
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, Literal, TypeVar

from loadtui.loadgen.stats import nonnegative

Arrivals = Literal["uniform", "poisson"]
ARRIVALS: tuple[Arrivals, ...] = ("uniform", "poisson")

MAX_CATCH_UP = 10_000
"""Arrivals handed out by one :meth:`Schedule.due` call at most (a paused clock must not make a burst of millions)."""


class Schedule:
    """The intended times of arrivals at `rate` per second, from `start` on."""

    def __init__(self, rate: float, start: float, arrivals: Arrivals = "uniform", rng: random.Random | None = None):
        self._rng = rng or random.Random()  # noqa: S311 (arrival gaps, not a secret)
        self.arrivals = arrivals
        self.rate = 0.0
        self._next = math.inf
        self.set_rate(rate, start)

    def _gap(self) -> float:
        if self.rate <= 0:
            return math.inf
        if self.arrivals == "poisson":
            return self._rng.expovariate(self.rate)
        return 1.0 / self.rate

    def set_rate(self, rate: float, now: float) -> None:
        """From `now` on, arrivals are due at `rate` per second (0 stops them); the first one a gap after `now`
        (at `now` itself when starting from 0)."""
        was = self.rate
        self.rate = max(0.0, rate)
        if self.rate <= 0:
            self._next = math.inf
        elif was <= 0:
            self._next = now
        else:
            self._next = min(self._next, now + self._gap()) if math.isfinite(self._next) else now + self._gap()

    @property
    def next(self) -> float:
        """When the next arrival is due (infinity at rate 0)."""
        return self._next

    def due(self, now: float) -> list[float]:
        """The intended times of every arrival due by `now`, oldest first (at most :data:`MAX_CATCH_UP`)."""
        times: list[float] = []
        while self._next <= now and len(times) < MAX_CATCH_UP:
            times.append(self._next)
            self._next += self._gap()
        return times


def corrected_ms(service_ms: float, intended: float | None, started: float) -> float:
    """A request's latency from its arrival's intended time: what it took plus how late its arrival started.

    `intended`/`started` are clock readings in seconds (None: not an open-model arrival, nothing to add).
    """
    if intended is None:
        return service_ms
    return service_ms + max(0.0, started - intended) * 1000.0


@dataclass
class OpenCounters:
    """What the open model did, cumulative since it started (one process's, or the sum over the workers')."""

    target_rate: float = 0.0
    """Arrivals per second asked of this process (of all, once summed)."""
    due: int = 0
    """Arrivals that came due."""
    dropped: int = 0
    """Arrivals that found `max_in_flight` arrivals still running and were not started (counted, never hidden)."""
    completed: int = 0
    """Arrivals whose task finished (ok or not)."""
    in_flight: int = 0
    """Arrivals running now (a level, not a count)."""
    users: int = 0
    """User instances made so far and kept (a level: each holds its connections)."""
    service: Counter[int] = field(default_factory=Counter)
    """Each request's own time (ms, rounded as Locust rounds), without the wait for its arrival's start."""
    rates: tuple[float, float, float] | None = None
    """Due, finished and dropped a second as the processes that ran the arrivals measured them over their last report
    (summed by a master): counts that arrive once a second on each worker's own clock would alias into the master's
    seconds (two reports in one, none in the next)."""

    def to_dict(self) -> dict[str, object]:
        return {
            "target_rate": self.target_rate,
            "due": self.due,
            "dropped": self.dropped,
            "completed": self.completed,
            "in_flight": self.in_flight,
            "users": self.users,
            "service": {str(k): v for k, v in self.service.items()},
            "rates": list(self.rates) if self.rates is not None else None,
        }

    @classmethod
    def from_dict(cls, data: object) -> OpenCounters:
        """A worker's report; anything malformed reads as nothing."""
        if not isinstance(data, dict):
            return cls()

        def count(key: str) -> int:
            value = data.get(key)
            return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0

        rate = data.get("target_rate")
        service = data.get("service")
        buckets: Counter[int] = Counter()
        if isinstance(service, dict):
            for k, v in service.items():
                if isinstance(k, str) and k.isascii() and k.isdigit() and isinstance(v, int) and v > 0:
                    buckets[int(k)] += v
        raw_rates = data.get("rates")
        rates = None
        if isinstance(raw_rates, list) and len(raw_rates) == 3 and all(nonnegative(r) for r in raw_rates):
            rates = (float(raw_rates[0]), float(raw_rates[1]), float(raw_rates[2]))
        return cls(
            rates=rates,
            target_rate=float(rate) if nonnegative(rate) else 0.0,
            due=count("due"),
            dropped=count("dropped"),
            completed=count("completed"),
            in_flight=count("in_flight"),
            users=count("users"),
            service=buckets,
        )


def round_ms(ms: float) -> int:
    """Locust's histogram bucket for a response time (2 significant digits above 100 ms, 3 above 1 s)."""
    digits = 0 if ms < 100 else -1 if ms < 1000 else -2 if ms < 10000 else -3
    return int(round(ms, digits))


CLIENTS = 32
"""User instances a process makes before it reuses free ones: arrivals come from many clients, each with its own
keep-alive connection, so the load reaches every app worker the way independent clients' would (one instance reused
for every arrival would hold one connection, and one worker would get all the load)."""


T = TypeVar("T")


class Pool(Generic[T]):
    """User instances for arrivals: a new one while fewer than `clients` exist or none is free, up to `limit`
    running at once; free ones are reused oldest first, so every instance's connection carries its share."""

    def __init__(self, make: Callable[[], T], limit: int, clients: int = CLIENTS) -> None:
        self._make = make
        self.limit = limit
        self.clients = clients
        self.free: deque[T] = deque()
        self.all: list[T] = []
        self.running = 0

    def take(self) -> T | None:
        """A user for one arrival, or None when `limit` arrivals already run (the arrival is dropped)."""
        if self.running >= self.limit:
            return None
        self.running += 1
        if self.free and len(self.all) >= min(self.clients, self.limit):
            return self.free.popleft()
        user = self._make()
        self.all.append(user)
        return user

    def give_back(self, user: T, keep: bool = True) -> None:
        """The arrival is done; `keep` False retires the instance (it asked to stop)."""
        self.running -= 1
        if keep:
            self.free.append(user)
        else:
            self.all.remove(user)
