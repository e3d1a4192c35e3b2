"""A stranger at the Locust master's port (any local user can reach it on loopback): it can neither forge figures,
nor stop the measurement with a malformed message, nor join and take users."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import msgpack
import pytest
import zmq

pytestmark = pytest.mark.integration

# Each user reports 20 requests a second of 1 ms without any server: the figures are known exactly.
LOCUSTFILE = """
from locust import User, constant, task


class Counted(User):
    wait_time = constant(0.05)

    @task
    def tick(self):
        self.environment.events.request.fire(request_type="GET", name="/x", response_time=1, response_length=0,
                                             exception=None, context={})
"""


def records(stream: IO[str]) -> Iterator[dict[str, Any]]:
    for line in stream:
        if line.strip():
            yield json.loads(line)


@pytest.fixture
def master(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], int]]:
    locustfile = tmp_path / "counted.py"
    locustfile.write_text(LOCUSTFILE)
    proc = subprocess.Popen(
        [sys.executable, "-m", "loadtui.loadgen.runner", "--locustfile", str(locustfile), "--host", "http://127.0.0.1:9",
         "--processes", "2"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None and proc.stdin is not None
        ready = next(records(proc.stdout))
        assert ready["type"] == "ready" and ready["workers"] == 2, ready
        proc.stdin.write(json.dumps({"cmd": "start", "users": 2, "spawn_rate": 10}) + "\n")
        proc.stdin.flush()
        yield proc, int(ready["master_port"])
    finally:
        proc.kill()
        proc.wait(10)


def stranger(port: int, identity: bytes) -> zmq.Socket[bytes]:
    sock: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.IDENTITY, identity)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(f"tcp://127.0.0.1:{port}")
    return sock


def message(kind: str, data: Any, node: str) -> bytes:
    return bytes(msgpack.dumps([kind, data, node]))


def test_a_stranger_neither_forges_figures_nor_stops_the_measurement(
    master: tuple[subprocess.Popen[str], int],
) -> None:
    proc, port = master
    assert proc.stdout is not None
    stats = records(proc.stdout)
    deadline = time.monotonic() + 30
    while next(stats).get("rps", 0) < 10:  # both users run
        assert time.monotonic() < deadline
    forger = stranger(port, b"evil_1")
    forger.send(b"\x00")  # one malformed byte: the listener used to die on it
    forger.send_multipart([b"x", b"y"])
    forger.send(message("client_ready", "2.47.0", "evil_1"))
    forged = {"stats": [], "stats_total": {"name": "Aggregated", "method": "", "num_requests": 21946}, "errors": {},
              "user_count": 0, "user_classes_count": {}}  # fmt: skip
    forger.send(message("stats", forged, "evil_1"))
    forger.send(message("stats", forged, "someone_else"))  # a sender id that is not its socket's
    seen = []
    for _ in range(5):
        record = next(stats)
        seen.append(record)
    forger.close()
    assert all(5 <= r["rps"] <= 80 for r in seen), [r["rps"] for r in seen]  # 2 users × 20/s, nothing forged
    assert seen[-1]["refused_workers"] == 1 and seen[-1]["dropped_messages"] >= 4
    assert seen[-1]["workers"] == 2 and seen[-1]["users"] == 2  # the stranger got no users
