"""CPU work in plain `def` endpoints: they run in the threadpool, but the GIL lets one thread compute at a time, so one
process is still one core (not a full threadpool)."""

from fastapi import FastAPI

app = FastAPI()


@app.get("/")
def index() -> dict[str, int]:
    total = 0
    for i in range(60_000):
        total += i * i % 7
    return {"total": total}
