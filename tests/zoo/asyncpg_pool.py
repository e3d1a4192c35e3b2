"""asyncpg's pool, too small: 2 connections per process for a 20 ms query. DATABASE_URL is read as a URL, as asyncpg
reads it. POOL_MAX sizes the pool."""

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from fastapi import FastAPI

pools: list[asyncpg.Pool] = []


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    size = int(os.environ.get("POOL_MAX", "2"))
    pools.append(await asyncpg.create_pool(os.environ["DATABASE_URL"], min_size=size, max_size=size))
    yield
    await pools[0].close()


app = FastAPI(lifespan=lifespan)


@app.get("/")
async def index() -> dict[str, str]:
    async with pools[0].acquire() as conn:
        await conn.execute("SELECT pg_sleep(0.02)")
    return {"status": "ok"}
