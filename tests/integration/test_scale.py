"""The scale story's external database: `--dsn` to a PostgreSQL loadtui did not start (here: one the tests run)."""

from __future__ import annotations

from pathlib import Path

from loadtui.config import RunConfig
from loadtui.session.core import Session
from loadtui.stack.database import EmbeddedDatabase
from tests.helpers import wait_for


def test_an_external_database_is_measured_and_left_running(tmp_path: Path, database: EmbeddedDatabase) -> None:
    config = RunConfig(dsn=database.app_dsn, workers=2, users=6, spawn_rate=20, pool_min=1, pool_max=3,
                       record=str(tmp_path / "s.jsonl"))  # fmt: skip
    s = Session(config)
    s.open()
    try:
        assert s.children.database is None  # nothing embedded was started
        wait_for(lambda: s.ticks and s.ticks[-1].rps > 0 and s.ticks[-1].db is not None
                 and s.ticks[-1].db.connections >= 2, 30, "requests and the database's connections")  # fmt: skip
        tick = s.ticks[-1]
        assert tick.db is not None and tick.db.max_connections == 100 and tick.fail_rps == 0
    finally:
        s.close()
    assert database.alive  # loadtui never stops a server it did not start
