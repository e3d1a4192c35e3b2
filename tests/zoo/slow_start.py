"""An app that takes 4 s to start (loading a model, warming a cache), then serves a 15 ms awaited call. Healthy."""

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    time.sleep(4)  # startup work, before the app serves anything
    yield


app = FastAPI(lifespan=lifespan)


@app.get("/")
async def index() -> dict[str, str]:
    await asyncio.sleep(0.015)
    return {"status": "ok"}
