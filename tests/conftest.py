"""Fixtures shared by all tests; the real stack lives in tests/integration/conftest.py."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from tests.helpers import RUN_TAG_ENV, our_processes, wait_for

# Every process this run starts inherits the tag; the orphan check counts only those (tests/helpers.py).
os.environ.setdefault(RUN_TAG_ENV, uuid.uuid4().hex)


@pytest.fixture(scope="session", autouse=True)
def no_process_left_behind() -> Iterator[None]:
    """After the whole test session nothing loadtui started may still run: the suite itself proves 'no orphans'."""
    yield
    try:
        wait_for(lambda: not our_processes(), timeout=10, what="every process loadtui started to exit")
    except AssertionError:
        pytest.fail(f"processes left behind: {[' '.join(p.cmdline())[:120] for p in our_processes()]}")
