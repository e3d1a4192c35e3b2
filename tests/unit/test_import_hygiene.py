"""The headless core never imports Textual; nothing but the load-generator child imports Locust (DESIGN 2)."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import pytest

import loadtui

CHILD_ONLY = {"loadtui.loadgen.runner", "loadtui.loadgen.connections", "loadtui.loadgen.open_model"}
"""Modules that run only inside the load-generator child process, where Locust and gevent belong."""


pytestmark = pytest.mark.slow  # each test starts a Python process


def core_modules() -> list[str]:
    """Every module of the package but the Textual front end and the child-only ones: found, not listed by hand."""
    names = [m.name for m in pkgutil.walk_packages(loadtui.__path__, "loadtui.")]
    return sorted(
        n for n in names if not n.startswith("loadtui.tui") and n not in CHILD_ONLY and n != "loadtui.__main__"
    )


def test_the_walk_finds_the_core() -> None:
    found = core_modules()
    assert {
        "loadtui.session.core",
        "loadtui.diagnose.diagnoser",
        "loadtui.session.rebalance",
        "loadtui.loadgen.sampler",
    } <= set(found)
    assert len(found) >= 20


def test_core_imports_neither_textual_nor_rich_nor_locust() -> None:
    code = ("import sys\n" + "".join(f"import {m}\n" for m in core_modules()) +
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'rich', 'locust', 'gevent'))\n"
            "print(','.join(bad))")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""


def test_appstats_is_light_for_app_workers() -> None:
    code = ("import sys; import loadtui.appstats\n"
            "print(','.join(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('textual','locust','psutil','psycopg','rich'))))")  # fmt: skip
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == ""
