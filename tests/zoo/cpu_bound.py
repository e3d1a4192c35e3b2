"""CPU-bound work in the endpoint (about 5 ms of pure Python per request): one process uses one core at most."""

from fastapi import FastAPI

app = FastAPI()


@app.get("/")
async def index() -> dict[str, int]:
    total = 0
    for i in range(60_000):
        total += i * i % 7
    return {"total": total}
