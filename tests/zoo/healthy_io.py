"""The healthy counterpart of blocking_io and semaphore: the same 15 ms dependency, awaited, unlimited."""

import asyncio

from fastapi import FastAPI

app = FastAPI()


@app.get("/")
async def index() -> dict[str, str]:
    await asyncio.sleep(0.015)
    return {"status": "ok"}
