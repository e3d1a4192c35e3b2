"""Slow queries: the database holds each request for 100 ms; the pool (20 per process) has a connection for every user.

The queries wait in PostgreSQL (pg_sleep stands for a slow plan, a lock or I/O) without using the machine's CPU, so
the database is where the time goes, not the app or its pool. QUERY_S sets the query's time (the advised fix: faster).
"""

import os

from tests.zoo.pooled import pooled_app

QUERY_S = float(os.environ.get("QUERY_S", "0.1"))
app, pool = pooled_app(min_size=4, max_size=20)


@app.get("/")
async def index() -> dict[str, str]:
    async with pool.connection() as conn:
        await conn.execute("SELECT pg_sleep(%s)", (QUERY_S,))
    return {"status": "ok"}
