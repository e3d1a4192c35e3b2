"""Fixtures shared by all tests, and the two tiers; the real stack lives in tests/integration/conftest.py.

The fast tier (`pytest -m "not slow"`: unit, Pilot and snapshot tests, no process started) runs first and in under a
minute; everything that starts a process is `slow` (tests/integration and tests/e2e as a whole, and the few marked
tests elsewhere). A failure in the fast tier stops the run before the slow tier begins.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from tests.helpers import RUN_TAG_ENV, our_processes, wait_for

# Every process this run starts inherits the tag; the orphan check counts only those (tests/helpers.py).
os.environ.setdefault(RUN_TAG_ENV, uuid.uuid4().hex)


SLOW_FOLDERS = ("integration", "e2e")
"""Every test below these folders starts processes (the real stack, a terminal)."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the slow tier, and run the fast tier first."""
    for item in items:
        if item.get_closest_marker("integration") or any(part in SLOW_FOLDERS for part in item.path.parts[-3:-1]):
            item.add_marker(pytest.mark.slow)
    items.sort(key=lambda item: item.get_closest_marker("slow") is not None)  # stable: file order within each tier


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """A failing fast test stops the run before the slow tier: a broken unit is not worth 20 minutes of stack."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.failed and item.get_closest_marker("slow") is None:
        item.session.shouldstop = "a fast test failed: the slow tier was not run (pytest -m 'not slow' to iterate)"


@pytest.fixture(scope="session", autouse=True)
def no_process_left_behind() -> Iterator[None]:
    """After the whole test session nothing loadtui started may still run: the suite itself proves 'no orphans'."""
    yield
    try:
        wait_for(lambda: not our_processes(), timeout=10, what="every process loadtui started to exit")
    except AssertionError:
        pytest.fail(f"processes left behind: {[' '.join(p.cmdline())[:120] for p in our_processes()]}")
