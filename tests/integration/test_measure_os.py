"""What the collectors read from the operating system itself: a process's CPU (its own, a fork's), and the figures a
sender on this host puts on a real UDP socket. Real processes and sockets, so not in the fast tier."""

from __future__ import annotations

import os
import socket
import time

import pytest

from loadtui.appstats import Sender
from loadtui.measure.collectors import ProcessCollector
from loadtui.measure.remote import StatsListener


def burn(seconds: float) -> None:
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


def test_a_pid_listed_twice_reads_its_cpu_once() -> None:
    # Stock `uvicorn app:app` is one process: the supervisor and the worker are the same pid.
    collector = ProcessCollector()
    me = os.getpid()
    collector.sample([me, me])
    burn(0.3)
    stats = collector.sample([me, me])
    assert list(stats) == [me]
    assert stats[me].cpu_percent > 20.0, stats[me]
    assert stats[me].rss_bytes > 0 and (stats[me].threads or 0) >= 1


def test_a_busy_process_reads_busy_from_its_first_second() -> None:
    """The first CPU figure of a process is what it used since it started, not psutil's first reading of 0 %."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child spins, then leaves
        end = time.monotonic() + 3
        while time.monotonic() < end:
            pass
        os._exit(0)
    try:
        time.sleep(0.6)
        first = ProcessCollector().sample([pid])[pid]
        assert first.cpu_percent > 5.0, first  # psutil alone reads 0.0 here (busy: near 100 on an idle core)
    finally:
        os.kill(pid, 9)
        os.waitpid(pid, 0)


def test_a_sender_reaches_a_listener_with_its_own_cpu_and_memory() -> None:
    listener = StatsListener("127.0.0.1", 0, "s3cret")
    listener.start()
    try:
        host, port = listener.address
        sender = Sender(f"udp://{host}:{port}", "s3cret")
        end = time.process_time() + 0.05
        while time.process_time() < end:
            pass
        sender.send({"pid": 99, "time": time.time(), "requests": 1, "in_flight": 0})
        deadline = time.monotonic() + 5
        while listener.received == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        rows, _ = listener.sample()
        assert len(rows) == 1 and rows[0].host == socket.gethostname() and rows[0].pid == 99
        assert rows[0].cpu_percent > 0 and rows[0].rss_bytes > 10 * 2**20
        sender.close()
    finally:
        listener.stop()


def test_a_listen_port_in_use_is_one_line_naming_the_fix() -> None:
    from loadtui.errors import UsageError

    first = StatsListener("127.0.0.1", 0, None)
    try:
        port = first.address[1]
        with pytest.raises(UsageError, match=f"--stats-listen 127.0.0.1:{port}: .*; choose another port"):
            StatsListener("127.0.0.1", port, None)
    finally:
        first.stop()
