"""Run an ASGI app under uvicorn's own multi-process supervisor, without the multi-worker latency floor.

    python -m loadtui.serve myapp:app --host 127.0.0.1 --port 8000 --workers 4 [--no-access-log]

Stock `uvicorn --workers N` (N > 1) creates its shared listening socket with protocol 0; asyncio then never sets
TCP_NODELAY on accepted connections, and Nagle's algorithm plus delayed ACKs add about 40 ms to every keep-alive
request (uvicorn issue #3149, DESIGN 4.2). This launcher creates the socket as
`socket(AF_INET, SOCK_STREAM, IPPROTO_TCP)` and hands it to uvicorn's `Multiprocess` supervisor, which keeps its
worker management: SIGTTIN adds a worker, SIGTTOU removes one, SIGHUP restarts them all. It always runs the
supervisor, even for one worker, so the worker count can change live from 1.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys

import uvicorn
from uvicorn.supervisors import Multiprocess


def listening_socket(host: str, port: int) -> socket.socket:
    """A bound TCP socket whose accepted connections asyncio will give TCP_NODELAY."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


def parser() -> argparse.ArgumentParser:
    """The launcher's command line."""
    p = argparse.ArgumentParser(prog="python -m loadtui.serve", description=__doc__.splitlines()[0])
    p.add_argument("app", help="the ASGI app as module:attribute")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: loopback only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--access-log", action=argparse.BooleanOptionalAction, default=False)
    p.add_argument("--log-level", default="info")
    p.add_argument("--backlog", type=int, default=2048)
    p.add_argument(
        "--app-dir", default=".", help="look for the app's module in this directory (as uvicorn's --app-dir)"
    )
    return p


def main(argv: list[str] | None = None) -> int:
    """Bind the socket and run the supervisor until SIGINT/SIGTERM."""
    args = parser().parse_args(argv)
    if args.workers < 1:
        sys.stderr.write("--workers must be at least 1\n")
        return 2
    sys.path.insert(0, os.path.abspath(args.app_dir))  # the workers inherit it (multiprocessing's spawn)
    try:
        sock = listening_socket(args.host, args.port)
    except OSError as exc:
        sys.stderr.write(f"cannot listen on {args.host}:{args.port}: {exc.strerror}; choose another --port\n")
        return 2
    config = uvicorn.Config(
        args.app,
        host=args.host,
        port=args.port,
        workers=args.workers,
        access_log=args.access_log,
        log_level=args.log_level,
        backlog=args.backlog,
        # Startup failures must be visible in the log the supervisor reads (DESIGN 4.2).
        timeout_graceful_shutdown=5,
    )
    sock.listen(args.backlog)
    Multiprocess(config, sockets=[sock]).run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
