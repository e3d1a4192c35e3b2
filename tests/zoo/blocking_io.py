"""An `async def` endpoint that calls a synchronous SDK (blocking I/O of about 15 ms): the event loop serialises."""

import time

from fastapi import FastAPI

app = FastAPI()


def sdk_call() -> dict[str, str]:
    """A synchronous client library: blocks the calling thread for its round trip."""
    time.sleep(0.015)
    return {"status": "ok"}


@app.get("/")
async def index() -> dict[str, str]:
    return sdk_call()
