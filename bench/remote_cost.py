"""What remote per-worker figures cost: the helper in each worker with the UDP sender on, and loadtui's receiver.

    python bench/remote_cost.py [--seconds 10] [--workers 64]

- helper: the CPU the stats helper (`loadtui.appstats`: the event-loop lag probe 10 times a second and one record a
  second) uses in one worker, publishing to a file only (what loadtui's own runs do) and to a file and over UDP,
  signed (`LOADTUI_STATS_URL`, `LOADTUI_STATS_TOKEN`), side by side, as a % of one core;
- receiver: the CPU of loadtui's `--stats-listen` thread while another process sends the records of `--workers`
  workers once a second each, plus the cost of turning them into rows each second, as a % of one core.

Targets (issue 17): < 0.5% of a core per worker with the sender on; < 2% for the receiver at 64 workers.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import tempfile
import time
from pathlib import Path

from _common import table
from loadtui.appstats import Sender, WorkerStats, encode
from loadtui.measure.remote import StatsListener

TOKEN = "bench"  # noqa: S105 (a benchmark's shared secret)


def helper_cpu(seconds: float, udp: str | None) -> float:
    """% of a core the helper uses over `seconds` in this process (one worker's helper)."""
    directory = Path(tempfile.mkdtemp(prefix="loadtui-bench-"))
    stats = WorkerStats(directory, pool=None, sender=Sender(udp, TOKEN) if udp else None)

    async def run() -> float:
        task = asyncio.create_task(stats.run())
        c0, w0 = time.process_time(), time.monotonic()
        await asyncio.sleep(seconds)
        used = time.process_time() - c0
        task.cancel()
        return 100 * used / (time.monotonic() - w0)

    return asyncio.run(run())


def _send(port: int, workers: int, seconds: float) -> None:
    """Another process: `workers` records a second, each worker once, for `seconds`."""
    import socket

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    end = time.monotonic() + seconds
    n = 0
    while time.monotonic() < end:
        for pid in range(1000, 1000 + workers):
            record = {"pid": pid, "host": "bench", "time": time.time(), "requests": n, "in_flight": 1,
                      "loop_lag_max_ms": 1.0, "cpu_percent": 20.0, "rss_bytes": 50 * 2**20,
                      "pool": {"pool_size": 4, "pool_available": 2, "requests_waiting": 0}}  # fmt: skip
            sock.sendto(encode(record, TOKEN), ("127.0.0.1", port))
        n += 10
        time.sleep(1.0)


def receiver_cpu(seconds: float, workers: int) -> tuple[float, float, int]:
    """% of a core for receiving, and for the rows each second; the records received."""
    listener = StatsListener("127.0.0.1", 0, TOKEN)
    listener.start()
    sender = multiprocessing.Process(target=_send, args=(listener.address[1], workers, seconds))
    sender.start()
    sample_cpu = 0.0
    began = time.monotonic()
    while sender.is_alive():
        time.sleep(1.0)
        c0 = time.thread_time()
        listener.sample()
        sample_cpu += time.thread_time() - c0
    wall = time.monotonic() - began
    listener.stop()
    return 100 * listener.cpu_seconds / wall, 100 * sample_cpu / wall, listener.received


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=64)
    args = parser.parse_args()
    sink = StatsListener("127.0.0.1", 0, TOKEN)  # somewhere for the helper's datagrams to go
    sink.start()
    file_only = helper_cpu(args.seconds, None)
    with_udp = helper_cpu(args.seconds, f"udp://127.0.0.1:{sink.address[1]}")
    sink.stop()
    receive, rows, received = receiver_cpu(args.seconds, args.workers)
    print(table(
        ["what", "% of one core"],
        [["helper per worker, file only", file_only], ["helper per worker, file + UDP sender", with_udp],
         [f"receiver thread, {args.workers} remote workers ({received} records)", receive],
         [f"rows for {args.workers} remote workers, each second", rows]],
    ))  # fmt: skip


if __name__ == "__main__":
    main()
