"""Who a Locust master listens to: the workers it expects, and nobody else (imported in the load-generator child only).

Locust's master takes any message from anyone who reaches its port: a stranger could report forged statistics, stop
every measurement with one malformed message (the master's listener dies on it), or join and be given users. Here
every message passes a guard before Locust sees it:

- local workers prove they are ours with a secret the master hands them in their environment (never on a command
  line, which other users can read): it is part of their Locust client id;
- remote `locust --worker` processes (`--master-bind`, `--expect-workers N`) are admitted first come up to N, by the
  id they connect with; later ones are told to quit and never reach the master;
- a message that does not decode, or whose sender id differs from its socket's, is dropped and counted.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

SECRET_ENV = "LOADTUI_LOCUST_SECRET"  # noqa: S105 (the variable's name, not a secret)
"""How the master hands its local workers the secret (their environment, readable only by their user and root)."""

MARK = "_lt"
"""Before the secret in a local worker's client id (Locust builds it as `<host>_<hex>`)."""


def new_secret() -> str:
    """A secret for one session's workers."""
    return secrets.token_hex(16)


class _Hex:
    """What `uuid4()` returns to Locust's worker: only its `.hex` is read."""

    def __init__(self, hex_: str) -> None:
        self.hex = hex_


def sign_worker_ids(secret: str) -> None:
    """In a local worker, before its runner is created: its client id carries the secret."""
    import locust.runners

    real = getattr(locust.runners, "uuid4")  # noqa: B009 - Locust does not export it, but builds the id with it
    setattr(locust.runners, "uuid4", lambda: _Hex(f"{MARK[1:]}{secret}{real().hex}"))  # noqa: B010


@dataclass
class Guard:
    """The master's filter in front of Locust's message loop."""

    secret: str
    remote: int
    """Remote workers expected (`--expect-workers`): admitted first come, up to this many."""
    admitted: set[str] = field(default_factory=set)
    refused: set[str] = field(default_factory=set)
    """Ids that tried to join beyond the expected workers, or without the secret."""
    dropped: int = 0
    """Messages dropped: malformed, forged sender, or from a refused peer."""

    def local(self, client_id: str) -> bool:
        return f"{MARK}{self.secret}" in client_id

    def allows(self, client_id: str, kind: str) -> bool:
        """True when the message goes on to Locust (admitting a remote worker that says it is ready, if room)."""
        if self.local(client_id) or client_id in self.admitted:
            return True
        if kind == "client_ready" and len(self.admitted) < self.remote and client_id not in self.refused:
            self.admitted.add(client_id)
            return True
        self.refused.add(client_id)
        return False


def install(runner: Any, guard: Guard) -> None:
    """Put `guard` in front of the master `runner`'s message loop."""
    from locust.exception import RPCError, RPCSendError
    from locust.rpc import Message

    inner: Callable[[], tuple[str, Any]] = runner.server.recv_from_client

    def receive() -> tuple[str, Any]:
        while True:
            try:
                client_id, msg = inner()
            except (RPCError, RPCSendError):
                raise  # the network itself broke: Locust resets its server
            except Exception:
                guard.dropped += 1
                continue
            kind = getattr(msg, "type", None)
            if (
                not isinstance(client_id, str)
                or getattr(msg, "node_id", None) != client_id
                or not isinstance(kind, str)
            ):
                guard.dropped += 1
                continue
            if guard.allows(client_id, kind):
                return client_id, msg
            guard.dropped += 1
            if kind == "client_ready":
                with contextlib.suppress(Exception):  # a stranger that went away
                    runner.server.send_to_client(Message("quit", None, client_id))  # type: ignore[no-untyped-call]

    runner.server.recv_from_client = receive
