"""SQLAlchemy's own pool, too small: 2 connections for a 20 ms query, while the app keeps 6 more open for other work.

A pool loadtui cannot read (no helper, not psycopg_pool): PostgreSQL shows the app's busy connections stuck at 2 while
the others idle. DATABASE_URL is taken as SQLAlchemy takes a URL, with its driver prefix. POOL_SIZE sizes the pool.
"""

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

URL = os.environ["DATABASE_URL"].replace("postgresql://", "postgresql+psycopg://", 1)
engine = create_async_engine(URL, pool_size=int(os.environ.get("POOL_SIZE", "2")), max_overflow=0)
side = create_async_engine(URL, pool_size=6, max_overflow=0)  # reports, a listener...: open, mostly idle
held: list[AsyncConnection] = []


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    held.extend([await side.connect() for _ in range(6)])
    yield
    for conn in held:
        await conn.close()
    await side.dispose()
    await engine.dispose()


app = FastAPI(lifespan=lifespan)


@app.get("/")
async def index() -> dict[str, str]:
    async with engine.connect() as conn:
        await conn.execute(text("SELECT pg_sleep(0.02)"))
    return {"status": "ok"}
