"""Summaries of py-spy dumps (the real py-spy runs in tests/integration/test_findings.py)."""

from __future__ import annotations

from loadtui.measure.stacks import judge, parse, summarize

BLOCKED = """\
Process 27317: python -c from multiprocessing.spawn import spawn_main; spawn_main(tracker_fd=7, pipe_handle=9)
Python v3.11.7 (/usr/bin/python3.11)

Thread 27317 (idle): "MainThread"
    sleep_blocking (sample_app/api.py:205)
    run_endpoint_function (fastapi/routing.py:381)
    _InFlight.__call__ (loadtui/appstats.py:133)
    RequestResponseCycle.run_asgi (uvicorn/protocols/http/h11_impl.py:411)
    Handle._run (asyncio/events.py:80)
    BaseEventLoop._run_once (asyncio/base_events.py:1922)
    BaseEventLoop.run_forever (asyncio/base_events.py:607)
Thread 27318 (idle): "Thread-1 (always_pong)"
    wait (threading.py:324)
    always_pong (loadtui/appstats.py:90)
"""

FREE_LOOP_FULL_THREADPOOL = """\
Thread 100 (idle): "MainThread"
    select (selectors.py:468)
    BaseEventLoop._run_once (asyncio/base_events.py:1898)
    BaseEventLoop.run_forever (asyncio/base_events.py:607)
Thread 101 (idle): "AnyIO worker thread"
    sleep_sync (sample_app/api.py:165)
    run (anyio/_backends/_asyncio.py:967)
Thread 102 (idle): "AnyIO worker thread"
    sleep_sync (sample_app/api.py:165)
    run (anyio/_backends/_asyncio.py:967)
Thread 0x7f12 (active): "AnyIO worker thread"
    sleep_sync (sample_app/api.py:166)
    run (anyio/_backends/_asyncio.py:967)
"""


def test_a_blocked_loop_names_the_endpoint_it_is_stuck_in() -> None:
    threads = parse(BLOCKED)
    assert [t.name for t in threads] == ["MainThread", "Thread-1 (always_pong)"]
    assert threads[0].frames[0].function == "sleep_blocking" and threads[0].runs_event_loop
    lines = summarize(threads)
    assert lines[0] == (
        "event loop BUSY in sleep_blocking (sample_app/api.py:205) — nothing else runs on this worker until it returns"
    )
    assert lines[1] == "1 other thread idle (library code)"


def test_a_free_loop_and_threads_grouped_by_where_they_are() -> None:
    lines = summarize(parse(FREE_LOOP_FULL_THREADPOOL))
    assert lines[0] == "event loop free: waiting for I/O in select"
    assert "2 other threads in sleep_sync (sample_app/api.py:165)" in lines
    assert "1 other thread in sleep_sync (sample_app/api.py:166)" in lines


def serving(function: str, file: str) -> str:
    """A loop caught in the server's own code (no app frame): one of the many short steps of serving requests."""
    return f"""\
Thread 300 (active): "MainThread"
    {function} ({file})
    Handle._run (asyncio/events.py:80)
    BaseEventLoop._run_once (asyncio/base_events.py:1922)
    BaseEventLoop.run_forever (asyncio/base_events.py:607)
"""


def test_a_loop_caught_in_one_call_every_time_is_held_by_it() -> None:
    lines = judge([parse(BLOCKED), parse(BLOCKED), parse(FREE_LOOP_FULL_THREADPOOL)])
    assert lines[0] == (
        "event loop BUSY in sleep_blocking (sample_app/api.py:205) (2 of 3 samples) — held by one call: nothing else "
        "runs on this worker until it returns"
    )
    assert lines[1:] == ["1 other thread idle (library code)"]


def test_a_loop_busy_serving_many_requests_is_not_called_stuck() -> None:
    dumps = [
        parse(serving("send", "uvicorn/protocols/http/h11_impl.py:500")),
        parse(serving("_validate", "h11/_headers.py:170")),
        parse(BLOCKED),
    ]
    lines = judge(dumps)
    assert lines[0].startswith("event loop busy but not stuck: caught in 3 place(s) in 3 samples (send (uvicorn/")
    assert "BUSY" not in lines[0] and "nothing else runs" not in lines[0]


def test_the_same_server_frame_twice_is_still_not_a_held_loop() -> None:
    # Without the app's own code on the stack, the loop is doing the server's work: busy, not held by one call.
    same = parse(serving("send", "uvicorn/protocols/http/h11_impl.py:500"))
    assert judge([same, same, same])[0].startswith("event loop busy but not stuck: caught in 1 place(s)")


def test_a_loop_free_in_most_samples_is_free() -> None:
    lines = judge([parse(FREE_LOOP_FULL_THREADPOOL), parse(BLOCKED), parse(FREE_LOOP_FULL_THREADPOOL)])
    assert lines[0] == "event loop free: waiting for I/O in select (2 of 3 samples)"
    assert "2 other threads in sleep_sync (sample_app/api.py:165)" in lines


HOT = """\
Thread 400 (active): "MainThread"
    get_task (app/views.py:42)
    run_endpoint_function (fastapi/routing.py:381)
    Handle._run (asyncio/events.py:80)
    BaseEventLoop._run_once (asyncio/base_events.py:1922)
    BaseEventLoop.run_forever (asyncio/base_events.py:607)
"""


def test_a_loop_running_one_function_at_full_cpu_is_hot_not_held() -> None:
    lines = judge([parse(HOT)] * 3, cpu_percent=100.0)
    assert lines[0].startswith("event loop HOT in get_task (app/views.py:42) (3 of 3 samples, running at 100% CPU)")
    assert "held by one call" not in lines[0] and "process pool" in lines[0]


def test_the_same_function_at_idle_cpu_or_waiting_is_held() -> None:
    # Running in py-spy's eyes but the worker idles (a C call that releases the GIL between samples): held.
    assert "held by one call" in judge([parse(HOT)] * 3, cpu_percent=12.0)[0]
    # Waiting (py-spy shows the thread idle: a sleep, a socket read) at any CPU: held.
    assert "held by one call" in judge([parse(BLOCKED)] * 3, cpu_percent=100.0)[0]
