"""The app's own database pool is too small: 2 connections per process for a 20 ms query, while PostgreSQL has room.

POOL_MAX sizes the pool (the advised fix).
"""

import os

from tests.zoo.pooled import pooled_app

app, pool = pooled_app(min_size=2, max_size=int(os.environ.get("POOL_MAX", "2")))


@app.get("/")
async def index() -> dict[str, str]:
    async with pool.connection() as conn:
        await conn.execute("SELECT pg_sleep(0.02)")  # a 20 ms query
    return {"status": "ok"}
