"""Process figures: one psutil object per pid across seconds, each pid sampled once per second."""

from __future__ import annotations

import os
import time

from loadtui.collectors import ProcessCollector


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


def test_a_gone_pid_is_dropped() -> None:
    collector = ProcessCollector()
    assert collector.sample([2**22 + 12345]) == {}


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
