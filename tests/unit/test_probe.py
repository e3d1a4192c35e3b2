"""The probe's arithmetic with an injected clock and connection: answered, failed, the oldest one waiting."""

from __future__ import annotations

import http.client
from typing import Any, cast

from loadtui.measure.probe import MAX_OUTSTANDING, Prober


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Connection:
    """Answers after `takes` seconds of the clock, or fails."""

    def __init__(self, clock: Clock, takes: float = 0.002, fails: bool = False) -> None:
        self.clock, self.takes, self.fails = clock, takes, fails
        self.paths: list[str] = []

    def request(self, method: str, path: str, headers: Any = None) -> None:
        self.paths.append(path)
        if self.fails:
            raise ConnectionRefusedError

    def getresponse(self) -> Any:
        self.clock.now += self.takes
        return self

    def close(self) -> None:
        pass


def prober(clock: Clock, conn: Connection) -> Prober:
    return Prober("http://127.0.0.1:8000/api", clock=clock, connect=lambda: cast(http.client.HTTPConnection, conn))


def send(p: Prober, number: int) -> None:
    """What the schedule does for one probe: mark it sent, then run it."""
    p._pending[number] = p._clock()
    p._sent += 1
    p._probe(number)


def test_each_second_counts_the_answered_probes_and_their_median_in_ms() -> None:
    clock = Clock()
    conn = Connection(clock, takes=0.002)
    p = prober(clock, conn)
    send(p, 1)
    conn.takes = 0.004
    send(p, 2)
    conn.takes = 0.050
    send(p, 3)
    second = p.take()
    assert (second.sent, second.answered, second.failed) == (3, 3, 0)
    assert second.p50_ms == 4.0 and second.max_ms == 50.0 and second.waiting_ms is None
    assert all(path.startswith("/api/loadtui-probe-") for path in conn.paths)  # under the app's root, never routed
    empty = p.take()  # the next second starts from nothing
    assert (empty.sent, empty.answered, empty.p50_ms) == (0, 0, None)


def test_a_refused_probe_is_a_failure_not_a_time() -> None:
    clock = Clock()
    p = prober(clock, Connection(clock, fails=True))
    send(p, 1)
    second = p.take()
    assert (second.answered, second.failed, second.p50_ms) == (0, 1, None)


def test_the_oldest_probe_still_waiting_gives_the_lower_bound_of_the_wait() -> None:
    clock = Clock()
    p = prober(clock, Connection(clock))
    for number in range(1, MAX_OUTSTANDING + 1):  # stuck: none answered yet
        p._pending[number] = clock.now
        clock.now += 0.25
    assert p.take().waiting_ms == 750.0  # the first was sent 0.75 s ago
