"""The load generator's keep-alive connections: move them on request, retry what a closing worker dropped.

Child-only (imports geventhttpclient through Locust). Two things a load test needs that Locust does not do:

- **Reconnect.** A keep-alive connection stays on the app worker that accepted it, so a worker added live serves
  nothing until clients open new connections (DESIGN 4.2). :func:`retire` closes chosen users' connections as soon as
  their request in flight has its answer (never in the middle of one), spread over a few hundred milliseconds, so
  the new connections arrive one by one and land on the workers that are free to accept them. The parent picks the
  connections by their local port, which it matches to a worker's accepted sockets.
- **Retry what was never read.** When uvicorn removes a worker it closes its idle keep-alive connections; a request
  the client had just sent on one is reset before any response byte, unread. Like browsers and HTTP clients do
  (RFC 9110 §9.2.2), an idempotent request that failed that way on a reused connection is sent once more on a new
  connection; while loadtui itself is removing a uvicorn worker (:func:`draining`) any method is, since uvicorn's graceful
  shutdown closes only connections with no request in progress. Every retry is counted (:data:`RETRIES`) and shown
  as "retried", never hidden.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterable, Iterator
from typing import Any

import gevent
from geventhttpclient import client as ghc
from geventhttpclient.connectionpool import ConnectionPool
from geventhttpclient.response import HTTPConnectionClosed

IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})
DROPPED = (ConnectionResetError, BrokenPipeError, ConnectionAbortedError, HTTPConnectionClosed)
"""How a connection the server closed under a request looks to the client."""


class Counter:
    """Retries so far (a plain counter: gevent runs one greenlet at a time)."""

    def __init__(self) -> None:
        self.total = 0


RETRIES = Counter()
_draining_until = 0.0


def draining(seconds: float) -> None:
    """For the next `seconds`, a worker is being removed: requests dropped unread are retried whatever the method."""
    global _draining_until
    _draining_until = time.monotonic() + seconds


def _may_retry(method: str) -> bool:
    return method.upper() in IDEMPOTENT or time.monotonic() < _draining_until


def install() -> None:
    """Patch geventhttpclient (used by Locust's FastHttpUser) once: track checked-out sockets, retire, retry."""
    if getattr(ConnectionPool, "_loadtui", False):
        return
    ConnectionPool._loadtui = True  # type: ignore[attr-defined]
    get_socket, return_socket, release_socket = (
        ConnectionPool.get_socket,
        ConnectionPool.return_socket,
        ConnectionPool.release_socket,
    )

    def tracked_get(self: Any) -> Any:
        sock = get_socket(self)
        self._loadtui_out = sock
        return sock

    def retiring_return(self: Any, sock: Any) -> None:
        self._loadtui_out = None
        if getattr(self, "_loadtui_retire", False):
            self._loadtui_retire = False
            release_socket(self, sock)  # closes it; the user's next request opens a new connection
            return
        return_socket(self, sock)

    def tracked_release(self: Any, sock: Any) -> None:
        self._loadtui_out = None
        release_socket(self, sock)

    ConnectionPool.get_socket = tracked_get  # type: ignore[method-assign]
    ConnectionPool.return_socket = retiring_return  # type: ignore[method-assign]
    ConnectionPool.release_socket = tracked_release  # type: ignore[method-assign]

    request = ghc.HTTPClient.request

    def retrying_request(self: Any, method: str, request_uri: str, body: Any = b"", *args: Any, **kw: Any) -> Any:
        reused = not self._connection_pool._socket_queue.empty()
        try:
            return request(self, method, request_uri, body, *args, **kw)
        except DROPPED:
            if not reused or not _may_retry(method) or not isinstance(body, (bytes, str, type(None))):
                raise
            RETRIES.total += 1
            return request(self, method, request_uri, body, *args, **kw)

    ghc.HTTPClient.request = retrying_request  # type: ignore[method-assign]
    may_retry_after_send_error = ghc._may_retry_after_send_error

    def counted(method: str) -> bool:
        allowed = bool(may_retry_after_send_error(method))
        if allowed:
            RETRIES.total += 1  # geventhttpclient's own retry of an idempotent request on a closed connection
        return allowed

    ghc._may_retry_after_send_error = counted


def _pools(user: Any) -> Iterator[Any]:
    """The connection pools of a FastHttpUser (none for other clients)."""
    agent = getattr(getattr(user, "client", None), "client", None)
    clientpool = getattr(agent, "clientpool", None)
    for http_client in list(getattr(clientpool, "clients", {}).values()):
        pool = getattr(http_client, "_connection_pool", None)
        if pool is not None:
            yield pool


def _local_port(sock: Any) -> int | None:
    try:
        return int(sock.getsockname()[1])
    except (OSError, AttributeError, IndexError, TypeError):
        return None


def _ports(pool: Any) -> set[int]:
    socks = [*list(pool._socket_queue.queue), getattr(pool, "_loadtui_out", None)]
    return {p for p in (_local_port(s) for s in socks if s is not None) if p is not None}


def _retire_pool(pool: Any) -> None:
    """Close the pool's idle connections now and the one in use when its answer is in."""
    while not pool._socket_queue.empty():
        try:
            sock = pool._socket_queue.get(block=False)
        except gevent.queue.Empty:
            break
        try:
            sock.close()
        except OSError:
            pass
    if getattr(pool, "_loadtui_out", None) is not None:
        pool._loadtui_retire = True


def _retire_session(user: Any) -> bool:
    """For clients other than FastHttpUser (requests' HttpUser): close its pools; in-flight ones close when done."""
    close = getattr(getattr(user, "client", None), "close", None)
    if callable(close):
        close()
        return True
    return False


def users(runner: Any) -> list[Any]:
    """The user instances running in this process."""
    group = getattr(runner, "user_greenlets", None) or []
    return [g.args[0] for g in list(group) if getattr(g, "args", None)]


def retire(running: Iterable[Any], ports: set[int] | None, spread: float, fraction: float = 1.0) -> int:
    """Make users reconnect: those whose connection has one of `ports` (all when None), `spread` seconds apart in all.

    Users whose client this cannot inspect (not a FastHttpUser) reconnect with probability `fraction` when ports
    are given. Returns how many users were asked to reconnect.
    """
    chosen: list[Any] = []
    for user in running:
        pools = list(_pools(user))
        if pools:
            matching = [p for p in pools if ports is None or _ports(p) & ports]
            if matching:
                chosen.append(("pools", matching))
        elif ports is None or random.random() < fraction:  # noqa: S311 (which users move, not a secret)
            chosen.append(("session", user))
    random.shuffle(chosen)
    step = spread / max(1, len(chosen))
    for i, (kind, target) in enumerate(chosen):
        if kind == "pools":
            for pool in target:
                gevent.spawn_later(i * step, _retire_pool, pool)
        else:
            gevent.spawn_later(i * step, _retire_session, target)
    return len(chosen)
