"""PostgreSQL wherever it runs (the embedded server or `--dsn`): how many connections it allows, and whether a DSN
connects. Apart from :mod:`.database`, which starts and keeps the embedded one."""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from loadtui.errors import UsageError


@dataclass(frozen=True)
class ConnectionLimits:
    """How many connections the server allows, and to whom."""

    max_connections: int
    """`max_connections` of the server."""
    superuser_reserved: int
    """`superuser_reserved_connections`: slots only superusers may take."""
    reserved: int
    """`reserved_connections` (PostgreSQL 16+): slots for roles with pg_use_reserved_connections."""

    @property
    def for_ordinary_roles(self) -> int:
        """Connections a non-superuser app may open before it sees 'remaining connection slots are reserved'."""
        return max(0, self.max_connections - self.superuser_reserved - self.reserved)


class DatabaseError(RuntimeError):
    """The database could not be started or reached."""


def read_limits(dsn: str) -> ConnectionLimits:
    """Connection limits of the server at `dsn`."""
    with psycopg.connect(dsn, connect_timeout=5) as conn:
        rows: dict[str, str] = dict(
            conn.execute(
                "SELECT name, setting FROM pg_settings WHERE name = ANY(%s)",
                (["max_connections", "superuser_reserved_connections", "reserved_connections"],),
            ).fetchall()
        )
    return ConnectionLimits(
        max_connections=int(rows.get("max_connections", 100)),
        superuser_reserved=int(rows.get("superuser_reserved_connections", 3)),
        reserved=int(rows.get("reserved_connections", 0)),
    )


def check_dsn(dsn: str) -> None:
    """Raise :class:`UsageError` with a one-line reason if `dsn` does not connect."""
    try:
        with psycopg.connect(dsn, connect_timeout=5):
            pass
    except psycopg.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UsageError(f"--dsn does not connect ({first}); check host, port, user and password") from None
