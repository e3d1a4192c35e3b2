"""The headless core never imports Textual; nothing but the load-generator child imports Locust (DESIGN 2)."""

from __future__ import annotations

import subprocess
import sys

CORE = ["loadtui.session", "loadtui.headless", "loadtui.diagnosis", "loadtui.recorder", "loadtui.segments",
        "loadtui.model", "loadtui.stats", "loadtui.collectors", "loadtui.supervisor", "loadtui.loadgen",
        "loadtui.database", "loadtui.appstats", "loadtui.cli"]  # fmt: skip


def test_core_imports_neither_textual_nor_locust() -> None:
    code = ("import sys\n" + "".join(f"import {m}\n" for m in CORE) +
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'locust', 'gevent'))\n"
            "print(','.join(bad))")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""


def test_appstats_is_light_for_app_workers() -> None:
    code = ("import sys; import loadtui.appstats\n"
            "print(','.join(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('textual','locust','psutil','psycopg','rich'))))")  # fmt: skip
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == ""
