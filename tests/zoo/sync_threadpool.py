"""Plain `def` endpoints waiting on a slow dependency (200 ms): they run in anyio's threadpool of 40 threads."""

import time

from fastapi import FastAPI

app = FastAPI()


@app.get("/")
def index() -> dict[str, str]:
    time.sleep(0.2)
    return {"status": "ok"}
