"""An HTTP client with a small connection limit: every request calls another service (40 ms) through an httpx client
that keeps at most 2 connections, so requests queue for the client inside the app while its loop is free.

The other service runs inside the app's process (a plain asyncio server on a free loopback port), so the zoo needs
nothing else. LIMIT sets the client's connection limit (the fix: raise it).
"""

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI

state: dict[str, object] = {}


async def _upstream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A keep-alive HTTP/1.1 service that answers every request after 40 ms."""
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            if not head:
                break
            await asyncio.sleep(0.04)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok")
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    server = await asyncio.start_server(_upstream, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    limit = int(os.environ.get("LIMIT", "2"))
    limits = httpx.Limits(max_connections=limit, max_keepalive_connections=limit)
    client = httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=30)
    state["client"] = client
    yield
    await client.aclose()
    server.close()


app = FastAPI(lifespan=lifespan)


@app.get("/")
async def index() -> dict[str, str]:
    client = state["client"]
    assert isinstance(client, httpx.AsyncClient)
    answer = await client.get("/")
    return {"upstream": answer.text}
