"""N+1 queries: a list page that runs one query for the list and one per item (30 items), each a round trip."""

from tests.zoo.pooled import pooled_app

app, pool = pooled_app(min_size=2, max_size=10)


@app.get("/")
async def index() -> dict[str, int]:
    async with pool.connection() as conn:
        cur = await conn.execute("SELECT g FROM generate_series(1, 30) g")
        ids = [row[0] for row in await cur.fetchall()]
        total = 0
        for item in ids:
            cur = await conn.execute("SELECT %s::int * 2", (item,))
            row = await cur.fetchone()
            total += row[0] if row else 0
    return {"total": total}
