"""The healthy counterpart of sync_threadpool: plain `def` endpoints on a fast dependency (20 ms); threads to spare."""

import time

from fastapi import FastAPI

app = FastAPI()


@app.get("/")
def index() -> dict[str, str]:
    time.sleep(0.02)
    return {"status": "ok"}
