"""Apply the SQL files in `migrations/` once, in name order, before any worker starts.

Workers never migrate: N workers racing the same DDL is how lifespans deadlock. Applied files are remembered in
`schema_migrations`, and an advisory lock keeps two launchers from migrating at the same time.
"""

from __future__ import annotations

from pathlib import Path

import psycopg

MIGRATIONS = Path(__file__).with_name("migrations")
_LOCK_KEY = 7_041_919  # any constant: the advisory lock that serialises migrations


def migrate(dsn: str) -> list[str]:
    """Apply pending migrations; return the names applied now."""
    applied_now: list[str] = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        try:
            conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (name text PRIMARY KEY, applied_at timestamptz"
                         " NOT NULL DEFAULT now())")  # fmt: skip
            done = {row[0] for row in conn.execute("SELECT name FROM schema_migrations")}
            for path in sorted(MIGRATIONS.glob("*.sql")):
                if path.name in done:
                    continue
                with conn.transaction():
                    conn.execute(path.read_text())  # trusted file shipped with the app, no parameters
                    conn.execute("INSERT INTO schema_migrations (name) VALUES (%s)", (path.name,))
                applied_now.append(path.name)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
    return applied_now
