"""The load generator's per-second record: parsed once, and nothing malformed stops the measurements."""

from __future__ import annotations

from typing import Any

import pytest

from loadtui.loadgen.record import LoadRecord
from loadtui.model import Latency


def test_a_full_record() -> None:
    record = LoadRecord.parse({
        "type": "stats", "rps": 120.456, "fail_rps": 1.0, "retried_rps": 0.5, "users": 20,
        "latency": {"p50": 10.0, "p95": 30.0, "p99": 45.0, "max": 80.0},
        "endpoints": [{"method": "GET", "name": "/a", "rps": 100.0, "fail_rps": 0.0, "p50": 9.0, "p95": 20.0,
                       "p99": None}],
        "errors": [{"method": "POST", "name": "/b", "error": "HTTP 500", "count": 7, "new": 2}],
    })  # fmt: skip
    assert (record.rps, record.fail_rps, record.retried_rps, record.users) == (120.46, 1.0, 0.5, 20)
    assert record.latency == Latency(10.0, 30.0, 45.0, 80.0)
    assert record.endpoints[0].name == "/a" and record.endpoints[0].p99 is None
    assert record.errors[0].new == 2 and record.errors[0].count == 7


@pytest.mark.parametrize(
    "bad",
    [
        None,
        [1, 2],
        "200",
        200,
        {"rps": "fast", "users": None, "latency": [1], "endpoints": "x", "errors": 5},
        {"rps": float("nan"), "fail_rps": float("inf"), "latency": {"p50": "1"}, "endpoints": [1, {"rps": 2}]},
        {"errors": [{"error": 5}, "boom", {"error": "ok", "count": "many"}]},
        {"users": True, "rps": -0.0},
    ],
)
def test_anything_malformed_is_left_out(bad: Any) -> None:
    record = LoadRecord.parse(bad)
    assert record.rps == 0.0 or record.rps == -0.0
    assert record.latency.p50 is None and not record.endpoints
    assert all(isinstance(e.count, int) for e in record.errors)
