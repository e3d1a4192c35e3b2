"""Row-lock contention: every request increments one counter row in a transaction that also does 10 ms of other
work, so each waits for the one before it. A pool with room (20 per process); the database is nearly idle.
ROWS spreads the counter over more rows (the fix)."""

import os
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from psycopg_pool import AsyncConnectionPool

ROWS = int(os.environ.get("ROWS", "1"))
pool = AsyncConnectionPool(os.environ["DATABASE_URL"], min_size=2, max_size=20, open=False)


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    await pool.open(wait=True)
    async with pool.connection() as conn:
        await conn.execute("CREATE TABLE IF NOT EXISTS zoo_counters (id int PRIMARY KEY, n bigint NOT NULL)")
        await conn.execute(
            "INSERT INTO zoo_counters SELECT g, 0 FROM generate_series(1, %s) g ON CONFLICT DO NOTHING", (ROWS,)
        )
    yield
    await pool.close()


app = FastAPI(lifespan=lifespan)


@app.get("/")
async def index() -> dict[str, str]:
    async with pool.connection() as conn, conn.transaction():
        await conn.execute("UPDATE zoo_counters SET n = n + 1 WHERE id = %s", (random.randint(1, ROWS),))
        await conn.execute("SELECT pg_sleep(0.01)")  # the rest of the transaction's work, row lock held
    return {"status": "ok"}
