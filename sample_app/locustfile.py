"""Locust users for the sample app: one user class per loadtui scenario (DESIGN 3.3 and 5).

Each class sets `scenario`, the name used by `--scenario` and the dashboard's picker. All use `FastHttpUser`
(about 3× the requests per core of `HttpUser`), and no wait time: each user sends its next request as soon as the
last one answered, so throughput ≈ users / latency, as in the seed "fastapi-async-perf".
Run it with plain Locust too: `locust -f sample_app/locustfile.py --host http://127.0.0.1:8000 CrudUser`.
"""

from __future__ import annotations

import random
from typing import Any

from locust import FastHttpUser, task


class CrudUser(FastHttpUser):
    """75% reads, 20% writes, 5% deletes on the tasks table, like the seed "why your FastAPI performs poorly"."""

    scenario = "crud"
    description = "75% reads / 20% writes / 5% deletes of tasks: one worker leaves the CPU idle"

    def on_start(self) -> None:
        self.created: list[int] = []

    @task(75)
    def read(self) -> None:
        if self.created and random.random() < 0.5:
            _expect(self.client.get(f"/tasks/{random.choice(self.created)}", name="/tasks/{id}", catch_response=True))
        else:
            _expect(self.client.get("/tasks/?limit=25", name="/tasks/", catch_response=True))

    @task(20)
    def write(self) -> None:
        with self.client.post("/tasks/", json={"title": "load test"}, name="/tasks/", catch_response=True) as resp:
            if resp.status_code == 201:
                self.created.append(resp.json()["id"])
                resp.success()
            else:
                resp.failure(f"HTTP {resp.status_code}: {_detail(resp)}")

    @task(5)
    def delete(self) -> None:
        if not self.created:
            return
        _expect(self.client.delete(f"/tasks/{self.created.pop()}", name="/tasks/{id}", catch_response=True))


class PingUser(FastHttpUser):
    """Hello world: what the server and the load generator can do at most (toggle the access log)."""

    scenario = "ping"
    description = "/ping/ only: the ceiling of server and load generator; try the access log on and off"

    @task
    def ping(self) -> None:
        self.client.get("/ping/")  # the ceiling: no response inspection in the load generator


class SyncSleepUser(FastHttpUser):
    """Three sleeps in a sync `def`: the threadpool caps concurrency."""

    scenario = "sync-sleep"
    description = "3 sleeps in a sync def: the threadpool (40 per worker) caps throughput"

    @task
    def sleep(self) -> None:
        _expect(self.client.get("/sleep/sync", catch_response=True))


class AsyncSequentialUser(FastHttpUser):
    """Three independent sleeps awaited one after another."""

    scenario = "async-sequential"
    description = "3 independent awaits in a row: async, but 3x the latency"

    @task
    def sleep(self) -> None:
        _expect(self.client.get("/sleep/async-sequential", catch_response=True))


class AsyncDependentUser(FastHttpUser):
    """Three dependent sleeps."""

    scenario = "async-dependent"
    description = "3 awaits that depend on each other: they cannot overlap"

    @task
    def sleep(self) -> None:
        _expect(self.client.get("/sleep/async-dependent", catch_response=True))


class AsyncGatherUser(FastHttpUser):
    """Three sleeps gathered."""

    scenario = "async-gather"
    description = "3 awaits gathered: the latency of one"

    @task
    def sleep(self) -> None:
        _expect(self.client.get("/sleep/async-gather", catch_response=True))


class BlockingUser(FastHttpUser):
    """A blocking sleep inside `async def`."""

    scenario = "blocking"
    description = "time.sleep inside async def: the event loop serialises requests while the CPU idles"

    @task
    def sleep(self) -> None:
        _expect(self.client.get("/sleep/blocking", catch_response=True))


class SlowQueryUser(FastHttpUser):
    """`pg_sleep` through a pool smaller than the concurrency."""

    scenario = "slow-query"
    description = "pg_sleep through a small pool: requests queue for connections while the CPU idles"

    @task
    def query(self) -> None:
        _expect(self.client.get("/slow-query", catch_response=True))


def _expect(context: Any) -> None:
    """Fail a response that is not 2xx with the server's own words, so "too many clients" reaches loadtui.

    Locust's own failure text for a bad status names only the code and URL; the app's `detail` says why.
    """
    with context as resp:
        if not resp.status_code:
            return  # no response at all: Locust reports the connection error itself
        if 200 <= resp.status_code < 300:
            resp.success()
        else:
            resp.failure(f"HTTP {resp.status_code}: {_detail(resp)}")


def _detail(resp: object) -> str:
    try:
        return str(resp.json().get("detail", ""))[:200]  # type: ignore[attr-defined]
    except Exception:
        return ""
