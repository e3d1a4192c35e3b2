"""The healthy counterpart of small_pool and slow_query: a pool of 10 per process, a query of a millisecond, and a
15 ms call to another service (awaited, outside the connection) like most real endpoints make."""

import asyncio

from tests.zoo.pooled import pooled_app

app, pool = pooled_app(min_size=2, max_size=10)


@app.get("/")
async def index() -> dict[str, int]:
    async with pool.connection() as conn:
        cur = await conn.execute("SELECT count(*) FROM generate_series(1, 100)")
        row = await cur.fetchone()
    await asyncio.sleep(0.015)
    return {"count": row[0] if row else 0}
