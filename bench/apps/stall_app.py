"""A tiny ASGI app for bench/arrival_rate.py: spins the CPU for `WORK_US` per request, and every `STALL_EVERY`-th
request blocks the event loop for `STALL_S` seconds (a `time.sleep`: a garbage-collection pause, a slow synchronous
call)."""

import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

STALL_EVERY = int(os.environ.get("STALL_EVERY", "0"))
STALL_S = float(os.environ.get("STALL_S", "2"))
WORK_US = int(os.environ.get("WORK_US", "0"))
"""CPU each request spins for, in microseconds (a real endpoint's work: parsing, a query's rows, JSON)."""
_count = 0


async def app(
    scope: dict[str, Any], receive: Callable[[], Awaitable[Any]], send: Callable[[Any], Awaitable[None]]
) -> None:
    global _count
    if scope["type"] != "http":
        return
    _count += 1
    if WORK_US:
        end = time.perf_counter() + WORK_US / 1e6
        while time.perf_counter() < end:
            pass
    if STALL_EVERY and _count % STALL_EVERY == 0:
        time.sleep(STALL_S)
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"ok"})
