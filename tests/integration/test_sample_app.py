"""The sample app on the real stack: CRUD, bad input, both database modes, per-worker stats, keep-alive latency."""

from __future__ import annotations

import json
import statistics
import time
from typing import Any

import psycopg
import pytest
from sample_app.api import encode_cursor

from loadtui.stack.database import EmbeddedDatabase
from tests.helpers import wait_for


def call(app: Any, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    conn = app.conn()
    headers = {"content-type": "application/json"} if body is not None else {}
    conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
    resp = conn.getresponse()
    raw = resp.read()
    return resp.status, (json.loads(raw) if raw else None)


def test_crud_round_trip_and_pagination(sample_app_factory: Any) -> None:
    app = sample_app_factory(workers=1)
    ids = [call(app, "POST", "/tasks/", {"title": f"t{i}"})[1]["id"] for i in range(5)]
    status, task = call(app, "GET", f"/tasks/{ids[0]}")
    assert status == 200 and task["title"] == "t0"
    seen: list[int] = []
    # Page from just before our rows: other tests share the database and may have left thousands of tasks.
    cursor: str | None = encode_cursor(ids[0] - 1) if ids[0] > 1 else None
    while True:
        path = "/tasks/?limit=2" + (f"&after={cursor}" if cursor else "")
        status, page = call(app, "GET", path)
        assert status == 200 and len(page["items"]) <= 2
        seen += [t["id"] for t in page["items"]]
        cursor = page["next"]
        if cursor is None:
            break
    assert set(ids) <= set(seen) and seen == sorted(seen)
    assert call(app, "DELETE", f"/tasks/{ids[0]}")[0] == 204
    assert call(app, "GET", f"/tasks/{ids[0]}")[0] == 404


@pytest.mark.parametrize(
    ("method", "path", "body", "expected"),
    [
        ("GET", "/tasks/abc", None, 422),
        ("GET", "/tasks/0", None, 422),
        ("GET", "/tasks/99999999999999999999", None, 422),
        ("GET", "/tasks/?limit=0", None, 422),
        ("GET", "/tasks/?limit=101", None, 422),
        ("GET", "/tasks/?after=%%%", None, 422),
        ("POST", "/tasks/", {"title": ""}, 422),
        ("POST", "/tasks/", {"nope": 1}, 422),
        ("DELETE", "/tasks/123456789", None, 404),
    ],
)
def test_bad_input_is_4xx_never_5xx(sample_app_factory: Any, method: str, path: str, body: Any, expected: int) -> None:
    app = sample_app_factory(workers=1)
    assert call(app, method, path, body)[0] == expected


def test_bad_json_is_422(sample_app_factory: Any) -> None:
    app = sample_app_factory(workers=1)
    conn = app.conn()
    conn.request("POST", "/tasks/", body="{not json", headers={"content-type": "application/json"})
    assert conn.getresponse().status == 422


def test_two_workers_publish_their_own_pool_stats_and_group_in_pg_stat_activity(
    sample_app_factory: Any, database: EmbeddedDatabase
) -> None:
    app = sample_app_factory(workers=2, pool_min="3", pool_max="5")
    records = [json.loads(p.read_text()) for p in app.stats_dir.glob("*.json")]
    assert len({r["pid"] for r in records}) == 2
    for r in records:
        assert r["pool"]["pool_max"] == 5 and r["pool"]["pool_size"] >= 3
        assert r["loop_lag_ms"] >= 0 and r["in_flight"] >= 0
    with psycopg.connect(database.admin_dsn) as conn:
        rows = conn.execute(
            "SELECT application_name, count(*) FROM pg_stat_activity WHERE application_name LIKE 'sample_app-%%' "
            "GROUP BY 1"
        ).fetchall()
    by_app: dict[str, int] = dict(rows)
    for r in records:
        assert by_app.get(f"sample_app-{r['pid']}", 0) >= 3


def test_per_request_mode_opens_a_connection_per_request(sample_app_factory: Any) -> None:
    app = sample_app_factory(workers=1, db_mode="per-request")
    status, _task = call(app, "POST", "/tasks/", {"title": "x"})
    assert status == 201
    record = json.loads(next(app.stats_dir.glob("*.json")).read_text())
    assert record["pool"] is None


def test_sleep_endpoints_take_their_time(sample_app_factory: Any) -> None:
    app = sample_app_factory(workers=1)  # SAMPLE_APP_SLEEP_MS=20 in the fixture
    took = {p: call(app, "GET", p)[1]["total_ms"] for p in
            ("/sleep/sync", "/sleep/async-sequential", "/sleep/async-dependent", "/sleep/async-gather",
             "/sleep/blocking", "/slow-query")}  # fmt: skip
    assert took["/sleep/sync"] >= 60 and took["/sleep/async-sequential"] >= 60 and took["/sleep/async-dependent"] >= 60
    assert 20 <= took["/sleep/async-gather"] < 55
    assert took["/sleep/blocking"] >= 20 and took["/slow-query"] >= 20


def test_two_workers_keep_tcp_nodelay_on_keep_alive(sample_app_factory: Any) -> None:
    # Stock `uvicorn --workers 2` gives ~44 ms here (uvicorn #3149); loadtui's launcher must stay far below.
    app = sample_app_factory(workers=2)
    conn = app.conn()
    latencies = []
    for _ in range(200):
        began = time.perf_counter()
        conn.request("GET", "/ping/")
        conn.getresponse().read()
        latencies.append((time.perf_counter() - began) * 1000)
    assert statistics.median(latencies) < 10, statistics.median(latencies)


def test_worker_count_changes_live_by_signal(sample_app_factory: Any) -> None:
    import os
    import signal

    app = sample_app_factory(workers=1)
    os.kill(app.proc.pid, signal.SIGTTIN)
    wait_for(lambda: len(list(app.stats_dir.glob("*.json"))) == 2, timeout=15, what="a second worker")
