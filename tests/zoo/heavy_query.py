"""Slow queries that burn the database's CPU: each request counts over a generated series (tens of ms in PostgreSQL).

On a small machine PostgreSQL then fills the cores while the app's workers idle: the queries are the cause, and the
busy machine is what they look like.
"""

from tests.zoo.pooled import pooled_app

app, pool = pooled_app(min_size=4, max_size=20)


@app.get("/")
async def index() -> dict[str, int]:
    async with pool.connection() as conn:
        cur = await conn.execute("SELECT count(*) FROM generate_series(1, 300000) g WHERE g % 7 = 3")
        row = await cur.fetchone()
    return {"n": row[0] if row else 0}
