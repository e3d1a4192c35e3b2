"""The sample app's HTTP API: the seeds' endpoints, one FastAPI app.

- `/ping/` — the baseline of "how fast can FastAPI go";
- `/tasks/` — the CRUD of "why your FastAPI performs poorly under load" (cursor pagination, like the seed);
- `/sleep/...` — the three-sleeps experiment of "fastapi-async-perf", plus the common mistake of blocking in `async def`;
- `/slow-query` — `pg_sleep` through the pool, for requests that wait for connections;
- `/health` — for readiness checks.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import psycopg
from fastapi import Depends, FastAPI, HTTPException, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from loadtui.appstats import instrument
from sample_app.db import Database
from sample_app.settings import Settings

settings = Settings()
database = Database(settings)


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    """Open the worker's pool at start-up, close it at shutdown."""
    await database.open()
    try:
        yield
    finally:
        await database.close()


app = FastAPI(title="loadtui sample app", lifespan=lifespan)
instrument(app, pool=lambda: database.pool)


class ExtraWork:
    """Spin the CPU for `work_us` before each request: the app made slower by a known amount (a plain ASGI wrapper:
    Starlette's `@app.middleware` would add its own, larger cost)."""

    def __init__(self, inner: Any, work_us: int) -> None:
        self.inner = inner
        self.seconds = work_us / 1e6

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            until = time.perf_counter() + self.seconds
            while time.perf_counter() < until:
                pass
        await self.inner(scope, receive, send)


if settings.work_us:
    app.add_middleware(ExtraWork, work_us=settings.work_us)


async def connection() -> AsyncIterator[psycopg.AsyncConnection]:
    """A database connection for one request (pooled or new, by settings)."""
    async for conn in database.connection():
        yield conn


Conn = Annotated[psycopg.AsyncConnection, Depends(connection)]


class Pong(BaseModel):
    ping: str


class Task(BaseModel):
    id: int
    title: str
    done: bool


class NewTask(BaseModel):
    title: str = Field(min_length=1, max_length=200)
    done: bool = False


class TaskPage(BaseModel):
    items: list[Task]
    next: str | None
    """Cursor for the next page (pass as `after`), or null on the last page."""


class Slept(BaseModel):
    total_ms: float
    """Wall time the endpoint took."""


def encode_cursor(task_id: int) -> str:
    """Opaque pagination cursor."""
    return base64.urlsafe_b64encode(str(task_id).encode()).decode()


def decode_cursor(cursor: str) -> int:
    """Inverse of :func:`encode_cursor`; a malformed cursor is the client's error (422)."""
    try:
        value = int(base64.urlsafe_b64decode(cursor.encode()).decode())
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise HTTPException(422, "invalid cursor 'after'") from exc
    if value < 0:
        raise HTTPException(422, "invalid cursor 'after'")
    return value


@app.get("/ping/")
async def ping() -> Pong:
    """Do nothing, fast."""
    return Pong(ping="pong")


@app.get("/health")
async def health() -> dict[str, str]:
    """The app is up (the database is not checked: readiness must not depend on free connections)."""
    return {"status": "ok"}


@app.get("/tasks/")
async def list_tasks(
    conn: Conn,
    after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 25,
) -> TaskPage:
    """A page of tasks in id order, after the cursor."""
    start = decode_cursor(after) if after is not None else 0
    cur = await conn.execute("SELECT id, title, done FROM tasks WHERE id > %s ORDER BY id LIMIT %s", (start, limit + 1))
    rows = await cur.fetchall()
    items = [Task(id=r[0], title=r[1], done=r[2]) for r in rows[:limit]]
    nxt = encode_cursor(items[-1].id) if len(rows) > limit else None
    return TaskPage(items=items, next=nxt)


@app.post("/tasks/", status_code=201)
async def create_task(conn: Conn, payload: NewTask) -> Task:
    """Create a task."""
    cur = await conn.execute(
        "INSERT INTO tasks (title, done) VALUES (%s, %s) RETURNING id, title, done", (payload.title, payload.done)
    )
    row = await cur.fetchone()
    assert row is not None
    return Task(id=row[0], title=row[1], done=row[2])


TaskId = Annotated[int, Path(ge=1, le=2**63 - 1, description="a task id (bigserial)")]


@app.get("/tasks/{task_id}")
async def get_task(conn: Conn, task_id: TaskId) -> Task:
    """One task, or 404."""
    cur = await conn.execute("SELECT id, title, done FROM tasks WHERE id = %s", (task_id,))
    row = await cur.fetchone()
    if row is None:
        raise HTTPException(404, "task not found")
    return Task(id=row[0], title=row[1], done=row[2])


@app.delete("/tasks/{task_id}", status_code=204)
async def delete_task(conn: Conn, task_id: TaskId) -> None:
    """Delete a task, or 404."""
    cur = await conn.execute("DELETE FROM tasks WHERE id = %s", (task_id,))
    if cur.rowcount == 0:
        raise HTTPException(404, "task not found")


def _seconds() -> float:
    return settings.sleep_ms / 1000


@app.get("/sleep/sync")
def sleep_sync() -> Slept:
    """Three sleeps in a plain `def`: runs in the threadpool, which caps concurrency (40 threads per worker)."""
    began = time.perf_counter()
    for _ in range(3):
        time.sleep(_seconds())
    return Slept(total_ms=(time.perf_counter() - began) * 1000)


async def _step(previous: float) -> float:
    await asyncio.sleep(_seconds())
    return previous + _seconds()


@app.get("/sleep/async-sequential")
async def sleep_async_sequential() -> Slept:
    """Three independent sleeps awaited one after another: 3× the latency, however async."""
    began = time.perf_counter()
    await asyncio.sleep(_seconds())
    await asyncio.sleep(_seconds())
    await asyncio.sleep(_seconds())
    return Slept(total_ms=(time.perf_counter() - began) * 1000)


@app.get("/sleep/async-dependent")
async def sleep_async_dependent() -> Slept:
    """Three sleeps where each needs the previous result: they cannot overlap."""
    began = time.perf_counter()
    await _step(await _step(await _step(0.0)))
    return Slept(total_ms=(time.perf_counter() - began) * 1000)


@app.get("/sleep/async-gather")
async def sleep_async_gather() -> Slept:
    """Three independent sleeps gathered: the latency of one."""
    began = time.perf_counter()
    await asyncio.gather(asyncio.sleep(_seconds()), asyncio.sleep(_seconds()), asyncio.sleep(_seconds()))
    return Slept(total_ms=(time.perf_counter() - began) * 1000)


@app.get("/sleep/blocking")
async def sleep_blocking() -> Slept:
    """The common mistake: a blocking call inside `async def` stops the worker's event loop for everyone."""
    began = time.perf_counter()
    time.sleep(_seconds())
    return Slept(total_ms=(time.perf_counter() - began) * 1000)


@app.get("/slow-query")
async def slow_query(conn: Conn) -> Slept:
    """A query that takes `sleep_ms` in PostgreSQL, holding its connection all along."""
    began = time.perf_counter()
    await conn.execute("SELECT pg_sleep(%s)", (_seconds(),))
    return Slept(total_ms=(time.perf_counter() - began) * 1000)


@app.exception_handler(psycopg.errors.DataError)
async def data_error(_: Request, exc: psycopg.errors.DataError) -> JSONResponse:
    """Values PostgreSQL rejects are the client's error, not a 500."""
    return JSONResponse({"detail": str(exc).splitlines()[0]}, status_code=422)
