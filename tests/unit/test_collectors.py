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
