"""Fixtures shared by all tests; the real stack lives in tests/integration/conftest.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.helpers import our_processes, wait_for


@pytest.fixture(scope="session", autouse=True)
def no_process_left_behind() -> Iterator[None]:
    """After the whole test session nothing loadtui started may still run: the suite itself proves 'no orphans'."""
    yield
    try:
        wait_for(lambda: not our_processes(), timeout=10, what="every process loadtui started to exit")
    except AssertionError:
        pytest.fail(f"processes left behind: {[' '.join(p.cmdline())[:120] for p in our_processes()]}")
