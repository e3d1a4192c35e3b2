"""RunConfig validation: every bad input names the problem and the fix."""

from __future__ import annotations

from typing import Any

import pytest

from loadtui.config import SCENARIO_NAMES, RunConfig, check_pool_fits
from loadtui.errors import UsageError


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"workers": 0}, "--workers must be at least 1"),
        ({"pool_min": 11, "pool_max": 10}, "--pool-min 11 is above --pool-max 10"),
        ({"scenario": "nope"}, "unknown scenario 'nope'"),
        ({"users": -1}, "--users"),
        ({"spawn_rate": 0}, "--spawn-rate"),
        ({"locustfile": "/does/not/exist.py"}, "does not exist"),
        ({"app": "uvicorn app:app"}, "must contain {port}"),
        ({"host": "localhost:8000"}, "must be a URL"),
        ({"db_max_connections": 2}, "--db-max-connections"),
        ({"loadgen_processes": 0}, "--loadgen-processes"),
    ],
)
def test_bad_config_is_refused_with_a_clear_message(changes: dict[str, Any], words: str) -> None:
    with pytest.raises(UsageError, match=words.replace("{", r"\{").replace("}", r"\}")):
        RunConfig().replace(**changes)


def test_defaults_are_valid_and_every_scenario_is_accepted() -> None:
    for name in SCENARIO_NAMES:
        RunConfig(scenario=name).validate()
    assert len(SCENARIO_NAMES) == 8


def test_pool_arithmetic_gives_the_numbers() -> None:
    check_pool_fits(RunConfig(workers=4, pool_max=20), 97)
    with pytest.raises(UsageError, match=r"5 workers × pool max 20 = 100 connections exceed the 97"):
        check_pool_fits(RunConfig(workers=5, pool_max=20), 97)
    with pytest.raises(UsageError, match=r"pool min"):
        check_pool_fits(RunConfig(workers=10, pool_min=10, pool_max=10), 97)
    # Per-request mode has no pool to size; external apps are the user's business.
    check_pool_fits(RunConfig(workers=50, pool_max=20, db_mode="per-request"), 97)


def test_needs_restart_lists_startup_fields_only() -> None:
    a = RunConfig()
    b = a.replace(pool_max=20, users=99, access_log=True)
    assert b.needs_restart(a) == ["pool_max", "access_log"]


def test_round_trip_through_the_log_ignores_unknown_fields() -> None:
    cfg = RunConfig(workers=3, scenario="ping")
    assert RunConfig.from_dict(cfg.to_dict() | {"future_field": 1}) == cfg
