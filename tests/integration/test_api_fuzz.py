"""The sample app under inputs generated from its own OpenAPI schema (schemathesis): no request makes it fail.

The load scenarios only send what a well-behaved client sends; a load-testing target that answers odd input with
500s would make every failure count in loadtui suspect.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from tests.integration.conftest import RunningApp


@pytest.fixture
def api_schema(sample_app_factory: Callable[..., RunningApp]) -> Any:
    app = sample_app_factory(workers=1)
    return schemathesis.openapi.from_url(f"http://127.0.0.1:{app.port}/openapi.json")


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_input_makes_the_sample_app_fail(case: Any) -> None:
    case.call_and_validate(checks=[not_a_server_error])
