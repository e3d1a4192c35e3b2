"""The probe's arithmetic with an injected clock and connection: answered, failed, the oldest one waiting."""

from __future__ import annotations

import http.client
import re
import threading
import time
from typing import Any, cast

import pytest

from loadtui.measure.probe import MAX_OUTSTANDING, TIMEOUT_S, Prober


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
        assert method == "GET"
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


class Ticks(threading.Event):
    """A stop event that lets the loop go round `rounds` times without waiting, then stops it."""

    def __init__(self, rounds: int) -> None:
        super().__init__()
        self.rounds = rounds

    def wait(self, timeout: float | None = None) -> bool:
        self.rounds -= 1
        if self.rounds < 0:
            self.set()
        return self.is_set()


class Held(Connection):
    """Answers only once released: probes pile up as they do against a stalled app."""

    def __init__(self, clock: Clock) -> None:
        super().__init__(clock)
        self.release = threading.Event()

    def request(self, method: str, path: str, headers: Any = None) -> None:
        super().request(method, path, headers)
        assert headers == {"Connection": "close"}
        self.release.wait(10)


def until(condition: Any, what: str, deadline_s: float = 10.0) -> None:
    end = time.monotonic() + deadline_s
    while not condition():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.005)


def test_the_schedule_sends_one_probe_a_round_and_never_more_than_the_limit_outstanding() -> None:
    clock = Clock()
    conn = Held(clock)
    p = prober(clock, conn)
    p._stop = Ticks(10)
    p._schedule()  # ten rounds; the fourth onward find three probes still waiting
    assert (p._sent, sorted(p._pending)) == (MAX_OUTSTANDING, [1, 2, 3])
    conn.release.set()
    until(lambda: not p._pending, "the held probes to be answered")
    assert sorted(conn.paths) == [f"{p._prefix}/{n}" for n in (1, 2, 3)]
    second = p.take()
    assert (second.sent, second.answered, second.failed) == (3, 3, 0)


class Kept(Connection):
    """One kept-alive connection: answers a burst, or closes, or breaks."""

    def __init__(self, clock: Clock, takes: float, will_close: bool = False, answers: int = 1000) -> None:
        super().__init__(clock, takes)
        self.will_close, self.answers, self.closed, self.bodies = will_close, answers, 0, 0

    def request(self, method: str, path: str, headers: Any = None) -> None:
        super().request(method, path, headers)
        if len(self.paths) > self.answers:
            raise ConnectionResetError

    def read(self) -> bytes:
        self.bodies += 1
        return b"{}"

    def close(self) -> None:
        self.closed += 1


def test_kept_alive_bursts_time_all_but_their_first_answer_and_reconnect_after_an_error() -> None:
    clock = Clock()
    made = [Kept(clock, 0.004, answers=6), Kept(clock, 0.001, will_close=True), Kept(clock, 0.001, answers=0),
            Kept(clock, 0.002)]  # fmt: skip
    queue = list(made)
    p = Prober("http://127.0.0.1:8000", clock=clock, connect=lambda: cast(http.client.HTTPConnection, queue.pop(0)))
    p._stop = Ticks(6)
    p._keep_alive()
    first, closing, broken, last = made
    assert first.paths == [f"{p._prefix}/kept"] * 7 and first.bodies == 6 and first.closed == 1  # 2 bursts, a reset
    assert closing.paths == [f"{p._prefix}/kept"] and closing.closed == 1  # closes after its answer: dropped
    assert broken.bodies == 0 and broken.closed == 1
    assert len(last.paths) == 3 and last.closed == 1  # closed when the loop stops
    assert sorted(round(ms, 6) for ms in p._kept) == [2.0, 2.0, 4.0, 4.0, 4.0, 4.0]  # each burst's first untimed
    assert p.take().kept_p50_ms == 4.0


@pytest.mark.parametrize(
    ("url", "kind", "host", "port"),
    [
        ("http://127.0.0.1:8000/api", http.client.HTTPConnection, "127.0.0.1", 8000),
        ("https://app.internal/api", http.client.HTTPSConnection, "app.internal", 443),
        ("http://[::1]", http.client.HTTPConnection, "::1", 80),
    ],
)
def test_a_probe_connection_goes_where_the_app_listens(url: str, kind: type, host: str, port: int) -> None:
    conn = Prober(url)._connection()
    assert (type(conn), conn.host, conn.port, conn.timeout) == (kind, host, port, TIMEOUT_S)


def test_started_probes_run_on_their_own_threads_until_stopped() -> None:
    clock = Clock()
    p = Prober("http://127.0.0.1:8000", clock=clock, connect=lambda: cast(http.client.HTTPConnection,
               Kept(clock, 0.001)), interval=0.001)  # fmt: skip
    p.start()
    until(lambda: p._sent >= 2 and len(p._kept) >= 2, "probes on both threads")
    names = {t.name: t.daemon for t in threading.enumerate() if t.name.startswith("loadtui-probe")}
    assert names.get("loadtui-probe") is True and names.get("loadtui-probe-kept") is True  # never keep loadtui alive
    p.stop()
    assert p._thread is not None and not p._thread.is_alive()
    assert p._stop.is_set()


def test_figures_are_rounded_to_hundredths_of_a_ms_and_failures_counted_per_second() -> None:
    clock = Clock()
    conn = Connection(clock, takes=0.0012345)
    p = prober(clock, conn)
    send(p, 1)
    p._kept = [3.14159, 2.71828]
    p._pending[2] = clock.now - 0.0045678
    second = p.take()
    assert (second.p50_ms, second.max_ms, second.kept_p50_ms, second.waiting_ms) == (1.23, 1.23, 2.93, 4.57)
    conn.fails = True
    send(p, 3)
    send(p, 4)
    assert p.take().failed == 2
    send(p, 5)
    assert p.take().failed == 1  # each second counts its own


def test_probes_go_under_the_app_s_root_with_a_random_part() -> None:
    p = Prober("http:///api/")
    assert p._host == "127.0.0.1" and p._port == 80
    assert re.fullmatch(r"/api/loadtui-probe-[0-9a-f]{8}", p._prefix)
