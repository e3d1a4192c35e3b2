"""The load generator's per-second record, parsed once from the child's JSON line into a frozen value.

The child (:mod:`loadtui.loadgen.runner`) writes `{"type": "stats", ...}` once a second; the parent turns it into a
:class:`LoadRecord` here and nowhere else. A field of the wrong shape is dropped (its default used), never allowed to
stop the measurements.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from loadtui.model import EndpointStats, ErrorCount, Latency, OpenLoad


def _number(value: Any, default: float = 0.0) -> float:
    """A finite float, or `default`."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return default
    return float(value) if math.isfinite(value) else default


def _optional(value: Any) -> float | None:
    number = _number(value, math.nan)
    return None if math.isnan(number) else number


def _latency(data: dict[str, Any]) -> Latency:
    return Latency(**{k: _optional(data.get(k)) for k in ("p50", "p95", "p99", "max")})


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


@dataclass(frozen=True)
class LoadRecord:
    """What the load generator measured in one second."""

    rps: float = 0.0
    fail_rps: float = 0.0
    retried_rps: float = 0.0
    users: int = 0
    latency: Latency = field(default_factory=Latency)
    open: OpenLoad | None = None
    endpoints: tuple[EndpointStats, ...] = ()
    errors: tuple[ErrorCount, ...] = ()

    @classmethod
    def parse(cls, data: Any) -> LoadRecord:
        """The record of one `stats` line; anything malformed in it is left out."""
        if not isinstance(data, dict):
            return cls()
        raw_latency = data.get("latency")
        lat: dict[str, Any] = raw_latency if isinstance(raw_latency, dict) else {}
        endpoints = []
        for e in _list(data.get("endpoints")):
            if isinstance(e, dict) and isinstance(e.get("name"), str):
                endpoints.append(
                    EndpointStats(
                        method=str(e.get("method") or ""),
                        name=e["name"],
                        rps=_number(e.get("rps")),
                        fail_rps=_number(e.get("fail_rps")),
                        p50=_optional(e.get("p50")),
                        p95=_optional(e.get("p95")),
                        p99=_optional(e.get("p99")),
                    )
                )
        errors = []
        for e in _list(data.get("errors")):
            if isinstance(e, dict) and isinstance(e.get("error"), str):
                errors.append(
                    ErrorCount(
                        method=str(e.get("method") or ""),
                        name=str(e.get("name") or ""),
                        error=e["error"],
                        count=int(_number(e.get("count"))),
                        new=int(_number(e.get("new"))),
                    )
                )
        raw_open = data.get("open")
        opened = None
        if isinstance(raw_open, dict):
            raw_service = raw_open.get("service")
            service: dict[str, Any] = raw_service if isinstance(raw_service, dict) else {}
            opened = OpenLoad(
                target_rate=round(_number(raw_open.get("target_rate")), 2),
                achieved_rate=round(_number(raw_open.get("achieved_rate")), 2),
                due_rate=round(_number(raw_open.get("due_rate")), 2),
                dropped_rps=round(_number(raw_open.get("dropped_rps")), 2),
                in_flight=int(_number(raw_open.get("in_flight"))),
                service=_latency(service),
            )
        return cls(
            rps=round(_number(data.get("rps")), 2),
            fail_rps=round(_number(data.get("fail_rps")), 2),
            retried_rps=round(_number(data.get("retried_rps")), 2),
            users=int(_number(data.get("users"))),
            latency=_latency(lat),
            open=opened,
            endpoints=tuple(endpoints),
            errors=tuple(errors),
        )
