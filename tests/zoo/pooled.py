"""What the zoo's database apps share, written as psycopg's docs show it for FastAPI: a pool opened in the lifespan.

Nothing loadtui-specific: the database address comes from DATABASE_URL, as most apps take it.
"""

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from psycopg_pool import AsyncConnectionPool


def pooled_app(min_size: int, max_size: int) -> tuple[FastAPI, AsyncConnectionPool]:
    """A FastAPI app and the pool of `min_size`..`max_size` connections its lifespan opens and closes."""
    pool = AsyncConnectionPool(os.environ["DATABASE_URL"], min_size=min_size, max_size=max_size, open=False)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await pool.open(wait=True)
        yield
        await pool.close()

    return FastAPI(lifespan=lifespan), pool
