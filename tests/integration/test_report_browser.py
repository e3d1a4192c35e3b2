"""A report from a real headless run, opened in headless Chromium: the plots are drawn, the page is not blank."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

pytestmark = pytest.mark.integration

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or "chromium"
# As root Chromium needs --no-sandbox; the virtual time budget lets plotly.js draw before the capture.
BROWSER = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--virtual-time-budget=8000"]


def loadtui(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "loadtui", *args], capture_output=True, text=True, timeout=120)


def test_a_real_session_report_opens_in_a_browser_with_its_plots(tmp_path: Path) -> None:
    log = tmp_path / "run.jsonl"
    run = loadtui("headless", "--duration", "8", "--workers", "1", "--users", "5", "--record", str(log))
    assert run.returncode == 0, run.stderr
    page = tmp_path / "report.html"
    made = loadtui("report", str(log), "-o", str(page), "--csv", str(tmp_path / "csv"))
    assert made.returncode == 0, made.stderr
    html = page.read_text()
    for series in ("requests/s", "p95", "load generator", "pool waiting"):
        assert '"name":' + json.dumps(series).replace("/", "\\u002f") in html, series
    assert "worker " in html and "db " in html

    dom = subprocess.run([*BROWSER, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=90).stdout
    assert dom.count('class="main-svg"') >= 2, "plotly drew no plots"
    assert "requests/s and failures/s" in dom and "seconds since start" in dom

    shot = tmp_path / "report.png"
    subprocess.run([*BROWSER, "--window-size=1400,2400", f"--screenshot={shot}", page.as_uri()],
                   capture_output=True, timeout=90, check=True)  # fmt: skip
    with Image.open(shot) as image:
        pixels = image.convert("RGB").resize((280, 480))
        colors = pixels.getcolors(maxcolors=280 * 480) or []
        inked = sum(
            n for n, rgb in colors if isinstance(rgb, tuple) and sum(rgb) < 740
        )  # anything but (near) white: text, plot areas, lines
    assert len(colors) > 200, "the screenshot is (nearly) one colour"
    assert inked > 0.2 * 280 * 480, f"only {inked / (280 * 480):.0%} of the page has anything on it"
