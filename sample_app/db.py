"""Database access in the two modes the seed compares: a pool per worker, or a connection per request."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import psycopg
from fastapi import HTTPException
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from loadtui import appstats
from sample_app.settings import Settings


def application_name() -> str:
    """Groups this worker's connections in pg_stat_activity (DESIGN 4.3)."""
    return f"sample_app-{os.getpid()}"


class Database:
    """The worker's way to the database; one per worker, opened and closed by the app's lifespan."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.pool: AsyncConnectionPool | None = None
        if settings.db_mode == "pool":
            self.pool = AsyncConnectionPool(
                settings.db_dsn,
                min_size=settings.pool_min,
                max_size=settings.pool_max,
                timeout=settings.pool_timeout,
                kwargs={"application_name": application_name(), "autocommit": True},
                open=False,  # opened in the lifespan (psycopg's documented FastAPI pattern)
            )

    async def open(self) -> None:
        """Open the pool (waits for `pool_min` connections, so a too-small server fails the start loudly)."""
        if self.pool is not None:
            await self.pool.open(wait=True, timeout=self.settings.pool_timeout)

    async def close(self) -> None:
        """Close the pool."""
        if self.pool is not None:
            await self.pool.close()

    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection]:
        """A FastAPI dependency yielding a connection; database trouble becomes a 503 with the server's words."""
        try:
            if self.pool is not None:
                async with self.pool.connection() as conn:
                    yield conn
            else:
                try:
                    conn = await psycopg.AsyncConnection.connect(
                        self.settings.db_dsn, application_name=application_name(), autocommit=True
                    )
                except psycopg.OperationalError:
                    appstats.incr("db_connect_errors")
                    raise
                async with conn:
                    yield conn
        except PoolTimeout as exc:
            raise HTTPException(503, f"no pooled connection within {self.settings.pool_timeout:g} s") from exc
        except psycopg.OperationalError as exc:
            raise HTTPException(503, f"database unavailable: {_reason(exc)}") from exc


def _reason(exc: BaseException) -> str:
    """The server's reason: libpq puts it last, after the socket path ("... .s.PGSQL.5432" failed: FATAL: sorry, too
    many clients already), where a length limit further down would cut it off."""
    lines = [line for line in str(exc).splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    last = lines[-1].strip()
    reason = last.rpartition("failed: ")[2] if "failed: " in last else last
    return " ".join(reason.split())
