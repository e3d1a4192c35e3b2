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


# Real dumps (`py-spy dump --full-filenames`, as loadtui runs it) of stock uvicorn with uvloop (`uvicorn[standard]`):
# the loop is C, so no `_run_once` frame; the endpoint calls a blocking HTTP client of the standard library.
PY = "/root/.pyenv/versions/3.11.7/lib/python3.11"
SITE = "/srv/venv/lib/python3.11/site-packages"
UVLOOP_TAIL = f"""\
    RequestResponseCycle.run_asgi ({SITE}/uvicorn/protocols/http/httptools_impl.py:422)
    Runner.run ({PY}/asyncio/runners.py:118)
    asyncio_run ({SITE}/uvicorn/_compat.py:30)
    Server.run ({SITE}/uvicorn/server.py:86)
    Context.invoke ({SITE}/click/core.py:911)
    <module> ({SITE}/uvicorn/__main__.py:4)
    _run_module_as_main (<frozen runpy>:198)
"""
UVLOOP_BLOCKED = f"""\
Thread 23601 (idle): "MainThread"
    SocketIO.readinto ({PY}/socket.py:706)
    HTTPResponse._read_status ({PY}/http/client.py:286)
    urlopen ({PY}/urllib/request.py:216)
    index (/srv/app/sdk.py:18)
    run_endpoint_function ({SITE}/fastapi/routing.py:381)
{UVLOOP_TAIL}\
Thread 23603 (idle): "Thread-1 (serve_forever)"
    _PollLikeSelector.select ({PY}/selectors.py:415)
    BaseServer.serve_forever ({PY}/socketserver.py:233)
    Thread._bootstrap ({PY}/threading.py:1002)
"""
UVLOOP_FREE = f"""\
Thread 23601 (idle): "MainThread"
{UVLOOP_TAIL.split(chr(10), 1)[1]}\
"""


def test_a_uvloop_loop_held_by_a_blocking_client_names_the_endpoint_and_the_call() -> None:
    lines = judge([parse(UVLOOP_BLOCKED)] * 3, cpu_percent=9.0)
    assert lines[0].startswith(
        "event loop BUSY in index (/srv/app/sdk.py:18) → SocketIO.readinto (socket.py:706) (3 of 3 samples) — held by "
        "one call"
    ), lines
    # the standard library's server thread is not the app's code, and the CLI below the loop never is
    assert lines[1:] == ["1 other thread idle (library code)"]


def test_a_free_uvloop_loop_is_free() -> None:
    (thread,) = parse(UVLOOP_FREE)
    assert thread.runs_event_loop and thread.loop_waits_for_io and thread.app_frame is None
    assert judge([[thread]] * 3)[0] == (
        "event loop free: between callbacks, in its C loop (uvloop: waiting for I/O or in its own work) (3 of 3 samples)"
    )


def test_a_hot_loop_in_the_server_is_busy_not_held_by_the_command_line() -> None:
    # At full CPU serving many short requests the loop is caught in the server each time: the click frame that
    # started uvicorn is on every stack, below the loop, and must not be called the app's function.
    serving_uvloop = f"""\
Thread 1 (active): "MainThread"
    HttpToolsProtocol.data_received ({SITE}/uvicorn/protocols/http/httptools_impl.py:120)
{UVLOOP_TAIL}"""
    lines = judge([parse(serving_uvloop)] * 3, cpu_percent=99.0)
    assert lines[0].startswith("event loop busy but not stuck: caught in 1 place(s) in 3 samples (HttpToolsProtocol")
    assert "click" not in lines[0]


def test_an_app_installed_with_pip_is_still_the_apps_code() -> None:
    # `pip install .` puts the bundled sample app in site-packages: its frame is the app's, fastapi's is not.
    installed = f"""\
Thread 7 (idle): "MainThread"
    sleep_blocking ({SITE}/sample_app/api.py:205)
    run_endpoint_function ({SITE}/fastapi/routing.py:381)
    Handle._run ({PY}/asyncio/events.py:80)
    BaseEventLoop._run_once ({PY}/asyncio/base_events.py:1922)
    BaseEventLoop.run_forever ({PY}/asyncio/base_events.py:607)
"""
    assert judge([parse(installed)] * 3)[0].startswith(
        "event loop BUSY in sleep_blocking (sample_app/api.py:205) (3 of 3 samples) — held by one call"
    )


def test_frames_read_by_where_their_files_live() -> None:
    (thread,) = parse(UVLOOP_BLOCKED)[:1]
    names = {f.function: (f.is_library, str(f)) for f in thread.frames}
    assert names["index"] == (False, "index (/srv/app/sdk.py:18)")
    assert names["HTTPResponse._read_status"] == (True, "HTTPResponse._read_status (http/client.py:286)")
    assert names["run_endpoint_function"] == (True, "run_endpoint_function (fastapi/routing.py:381)")
    assert names["Context.invoke"] == (True, "Context.invoke (click/core.py:911)")
    assert names["_run_module_as_main"][0] is True
    assert thread.loop_at == 6 and thread.runs_event_loop and not thread.loop_waits_for_io
