"""compose.yaml stays in step with the code: same app module, launcher and settings."""

from __future__ import annotations

from pathlib import Path

import yaml
from sample_app.settings import Settings

from loadtui.appstats import STATS_TOKEN_ENV, STATS_URL_ENV, parse_stats_url
from loadtui.serve import parser as serve_parser

ROOT = Path(__file__).resolve().parents[2]


def test_compose_runs_the_sample_app_through_the_launcher_with_known_settings() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    db, app = compose["services"]["db"], compose["services"]["app"]
    assert "pg_isready" in " ".join(db["healthcheck"]["test"])
    assert app["depends_on"]["db"]["condition"] == "service_healthy"
    command = app["command"]
    assert command[:3] == ["python", "-m", "sample_app"]
    serve_parser().parse_args(["sample_app.api:app", *command[3:]])  # the launcher accepts every option
    known = {f"SAMPLE_APP_{name.upper()}" for name in Settings.model_fields} | {STATS_URL_ENV, STATS_TOKEN_ENV}
    assert set(app["environment"]) <= known
    url = app["environment"][STATS_URL_ENV]
    assert parse_stats_url(url)[0] == "host.docker.internal"
    assert "host.docker.internal:host-gateway" in app["extra_hosts"]
    assert "sample_app" in (ROOT / "Dockerfile").read_text()


def test_no_default_secret_and_no_root_in_the_container() -> None:
    """The stats token must be set by whoever starts compose (no shared default), and the app does not run as root."""
    token = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]["app"]["environment"][STATS_TOKEN_ENV]
    assert token.startswith("${LOADTUI_STATS_TOKEN:?"), token
    users = [line.split()[1] for line in (ROOT / "Dockerfile").read_text().splitlines() if line.startswith("USER ")]
    assert users and users[-1] not in ("root", "0")
