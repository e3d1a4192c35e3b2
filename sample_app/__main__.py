"""`python -m sample_app [launcher options]`: migrate once, then serve through loadtui's launcher.

The options are those of `python -m loadtui.serve` (`--host`, `--port`, `--workers`, `--access-log`), without the
app argument; database and pool settings come from `SAMPLE_APP_*` environment variables.
"""

from __future__ import annotations

import sys

import psycopg

from loadtui import serve
from sample_app.migrate import migrate
from sample_app.settings import Settings


def main(argv: list[str]) -> int:
    """Apply migrations, then run the app's workers."""
    settings = Settings()
    try:
        applied = migrate(settings.db_dsn)
    except psycopg.Error as exc:
        sys.stderr.write(f"sample_app: cannot migrate the database: {str(exc).strip().splitlines()[-1]}\n")
        return 1
    if applied:
        sys.stderr.write(f"sample_app: applied migrations {', '.join(applied)}\n")
    return serve.main(["sample_app.api:app", *argv])


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
