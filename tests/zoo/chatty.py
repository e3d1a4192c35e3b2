"""A chatty app: a log line per request (and uvicorn's access log on), a 10 ms awaited call. Healthy with room."""

import asyncio
import logging

from fastapi import FastAPI

app = FastAPI()
log = logging.getLogger("chatty")
logging.basicConfig(level=logging.INFO)


@app.get("/")
async def index() -> dict[str, str]:
    log.info("handling a request for the index page with a few details: user=%s items=%d", "someone", 12)
    await asyncio.sleep(0.01)
    return {"status": "ok"}
