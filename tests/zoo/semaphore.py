"""An app-level concurrency limit: a rate-limited dependency allows 2 calls at once per process (50 ms each).

The event loop stays free; requests wait on the semaphore, inside the app. LIMIT sets it (the advised fix: raise it).
"""

import asyncio
import os

from fastapi import FastAPI

app = FastAPI()
_limit: asyncio.Semaphore | None = None


@app.get("/")
async def index() -> dict[str, str]:
    global _limit
    if _limit is None:
        _limit = asyncio.Semaphore(int(os.environ.get("LIMIT", "2")))
    async with _limit:
        await asyncio.sleep(0.05)
    return {"status": "ok"}
