"""The load generator child: `python -m loadtui.loadgen.runner ...`. The only module that imports Locust.

Locust monkey-patches the standard library with gevent at import time, so it lives in its own process (DESIGN 2).
It speaks JSON lines:

- in (stdin): `{"cmd": "start", "users": N, "spawn_rate": R}` (again while running: change the count),
  `{"cmd": "rate", "rate": R, "arrivals": "uniform"|"poisson", "max_in_flight": M}` (the open model, see
  :mod:`.open_model`; split evenly over the worker processes), `{"cmd": "stop"}`, `{"cmd": "quit"}`; end of input means quit, so the child never outlives its parent;
- out (stdout): `{"type": "ready", "pids": [...]}` once, then `{"type": "stats", ...}` every second, with per-second
  figures from deltas of Locust's cumulative counters; `{"type": "error", "message": ...}` on failure.

With `--processes N` (N > 1) it runs a Locust master on loopback and N local worker processes of itself
(`--worker`), which report every second instead of Locust's default 3 s.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from typing import Any

# Imported before Locust (and without it): the per-second maths.
from loadtui.loadgen.sampler import Sampler
from loadtui.loadgen.stats import INTERVAL_KEY, WorkerRates, WorkerSeconds

MASTER_WAIT_SECONDS = 20.0
"""Deadline for local workers to connect to the master."""


_protocol: Any = None
"""Where records go: the private pipe given by --protocol-fd (stdout only when run by hand)."""


def emit(record: dict[str, Any]) -> None:
    """One JSON line to the parent, flushed. Never on stdout when a pipe was given: the user's locustfile may print."""
    out = _protocol or sys.stdout
    out.write(json.dumps(record, separators=(",", ":")) + "\n")
    out.flush()


def fail(message: str, code: int = 2) -> None:
    """Report an error to the parent and exit."""
    emit({"type": "error", "message": message})
    raise SystemExit(code)


def parser() -> argparse.ArgumentParser:
    """The child's command line (built by :class:`loadtui.loadgen.LoadGen`)."""
    p = argparse.ArgumentParser(prog="python -m loadtui.loadgen.runner")
    p.add_argument("--locustfile", required=True)
    p.add_argument("--user-class", action="append", default=[], help="user classes to run (default: all)")
    p.add_argument("--scenario", default=None, help="pick user classes whose `scenario` attribute matches")
    p.add_argument("--host", required=True)
    p.add_argument("--processes", type=int, default=1)
    p.add_argument("--master-bind", default="127.0.0.1")
    p.add_argument("--master-port", type=int, default=0)
    p.add_argument("--expect-workers", type=int, default=None)
    p.add_argument("--worker", action="store_true", help="run as a worker of a master on --master-port")
    p.add_argument("--master-host", default="127.0.0.1", help="with --worker: where the master listens")
    p.add_argument("--protocol-fd", type=int, default=None, help="write the JSON records to this inherited pipe")
    return p


def load_user_classes(path: str, names: list[str], scenario: str | None) -> list[Any]:
    """Import the locustfile and pick the user classes to run; exit with a clear message when it is broken."""
    from locust.util.load_locustfile import load_locustfile

    if not os.path.isfile(path):
        fail(f"locustfile {path} does not exist")
    try:
        classes, _shapes = load_locustfile(path)
    except SystemExit:
        fail(f"locustfile {path} could not be loaded")
    except Exception as exc:  # the user's file may raise anything at import
        fail(f"locustfile {path} is broken: {type(exc).__name__}: {exc}")
    if not classes:
        fail(f"locustfile {path} defines no User class")
    chosen: list[Any] = []
    if names:
        missing = [n for n in names if n not in classes]
        if missing:
            fail(f"locustfile {path} has no user class {', '.join(missing)}; it has {', '.join(sorted(classes))}")
        chosen = [classes[n] for n in names]
    elif scenario:
        chosen = [c for n, c in classes.items() if getattr(c, "scenario", None) == scenario or n == scenario]
        if not chosen:
            fail(f"locustfile {path} has no user class for scenario {scenario!r}")
    else:
        chosen = list(classes.values())
    return chosen


RECONNECT_MESSAGE = "loadtui_reconnect"
DRAINING_MESSAGE = "loadtui_draining"
RATE_MESSAGE = "loadtui_rate"
RETRIES_KEY = "loadtui_retries"
OPEN_KEY = "loadtui_open"
"""A worker's open-model counters since its last report (levels: target rate, in flight)."""


class OpenSide:
    """This process's open model, made on the first `rate` command (a closed-model run never makes one)."""

    def __init__(self, env: Any, classes: list[Any]) -> None:
        self.env = env
        self.classes = classes
        self.model: Any = None

    def set_rate(self, data: dict[str, Any]) -> None:
        from loadtui.loadgen.open_model import OpenModel

        limit = max(1, int(data.get("max_in_flight", 1000)))
        if self.model is None:
            self.model = OpenModel(self.env, self.classes, limit)
        arrivals = "poisson" if data.get("arrivals") == "poisson" else "uniform"
        rate = float(data.get("rate", 0))
        if rate > 0:
            self.model.set_rate(rate, arrivals, limit)
        else:
            self.model.stop()

    def stop(self) -> None:
        if self.model is not None:
            self.model.stop()

    def users(self) -> list[Any]:
        return self.model.users() if self.model is not None else []


def _report_second(side: OpenSide) -> Any:
    """A worker's `report_to_master` listener: the seconds since its last report on its own clock, and the open
    model's counts since then (the master turns both into rates: `stats.WorkerSeconds`, `OpenSum`)."""
    from loadtui.loadgen.arrivals import OpenCounters

    sent = OpenCounters()
    last = [time.monotonic()]

    def report(client_id: str, data: dict[str, Any]) -> None:
        at = time.monotonic()
        interval, last[0] = max(1e-3, at - last[0]), at
        data[INTERVAL_KEY] = interval
        if side.model is None:
            return
        now = side.model.counters
        due, dropped, completed = now.due - sent.due, now.dropped - sent.dropped, now.completed - sent.completed
        delta = OpenCounters(
            now.target_rate, due, dropped, completed, now.in_flight, now.users, now.service - sent.service,
            rates=(due / interval, completed / interval, dropped / interval),
        )  # fmt: skip
        sent.due, sent.dropped, sent.completed, sent.service = now.due, now.dropped, now.completed, now.service.copy()
        data[OPEN_KEY] = delta.to_dict()

    return report


class OpenSum:
    """The master's view of its workers' open models: counts summed, levels from each worker's last report."""

    def __init__(self) -> None:
        from loadtui.loadgen.arrivals import OpenCounters

        self.total = OpenCounters()
        self.levels: dict[str, tuple[float, int, int, tuple[float, float, float]]] = {}
        self.active = False

    def add(self, client_id: str, data: dict[str, Any]) -> None:
        from loadtui.loadgen.arrivals import OpenCounters

        if OPEN_KEY not in data:
            return
        part = OpenCounters.from_dict(data[OPEN_KEY])
        self.total.due += part.due
        self.total.dropped += part.dropped
        self.total.completed += part.completed
        self.total.service.update(part.service)
        self.levels[client_id] = (part.target_rate, part.in_flight, part.users, part.rates or (0.0, 0.0, 0.0))

    def counters(self, workers: set[str]) -> Any:
        if not self.active:
            return None
        live = [v for k, v in self.levels.items() if k in workers]
        self.total.target_rate = sum(level[0] for level in live)
        self.total.in_flight = sum(level[1] for level in live)
        self.total.users = sum(level[2] for level in live)
        self.total.rates = (
            sum(level[3][0] for level in live),
            sum(level[3][1] for level in live),
            sum(level[3][2] for level in live),
        )
        return self.total


def run_worker(args: argparse.Namespace) -> None:
    """A local worker: connect to the master, report every second, run until the master quits."""
    import locust.runners
    from locust.env import Environment

    from loadtui.loadgen import connections, peers

    locust.runners.WORKER_REPORT_INTERVAL = 1.0  # per-second numbers instead of 0/0/3x jumps (DESIGN 4.1)
    classes = load_user_classes(args.locustfile, args.user_class, args.scenario)
    connections.install()
    peers.sign_worker_ids(os.environ.get(peers.SECRET_ENV, ""))  # the master hears only workers with its secret
    env = Environment(user_classes=classes, host=args.host)
    runner = env.create_worker_runner(args.master_host, args.master_port)
    reported = 0

    def report_retries(client_id: str, data: dict[str, Any]) -> None:
        nonlocal reported
        data[RETRIES_KEY] = connections.RETRIES.total - reported
        reported = connections.RETRIES.total

    env.events.report_to_master.add_listener(report_retries)  # type: ignore[no-untyped-call]
    side = OpenSide(env, classes)
    env.events.report_to_master.add_listener(_report_second(side))  # type: ignore[no-untyped-call]
    runner.register_message(RATE_MESSAGE, lambda msg, **_kw: side.set_rate(msg.data))
    runner.register_message(RECONNECT_MESSAGE, lambda msg, **_kw: _reconnect(runner, msg.data, side))
    runner.register_message(DRAINING_MESSAGE, lambda msg, **_kw: connections.draining(float(msg.data)))
    runner.greenlet.join()


def _reconnect(runner: Any, data: dict[str, Any], side: OpenSide) -> int:
    from loadtui.loadgen import connections

    ports = data.get("ports")
    return connections.retire(
        connections.users(runner) + side.users(),
        None if ports is None else {int(p) for p in ports},
        float(data.get("spread", 0.5)),
        float(data.get("fraction", 1.0)),
    )


def main(argv: list[str] | None = None) -> None:
    """Run the runner and the command loop until quit or end of input."""
    args = parser().parse_args(argv)
    global _protocol
    if args.protocol_fd is not None:
        _protocol = os.fdopen(args.protocol_fd, "w", encoding="utf-8")
    if args.worker:
        run_worker(args)
        return
    # A broken locustfile is reported before Locust's own machinery starts.
    classes = load_user_classes(args.locustfile, args.user_class, args.scenario)

    import gevent
    from gevent.fileobject import FileObjectPosix
    from locust.env import Environment

    from loadtui.loadgen import connections, peers

    connections.install()
    env = Environment(user_classes=classes, host=args.host)
    children: list[subprocess.Popen[bytes]] = []
    guard = peers.Guard(peers.new_secret(), remote=args.expect_workers or 0)
    """Who the master hears: its local workers (by the secret), the expected remote ones; strangers are counted."""
    runner: Any
    if args.processes > 1 or args.expect_workers:
        from loadtui.procs.processes import free_port

        port = args.master_port or free_port(args.master_bind)
        runner = env.create_master_runner(master_bind_host=args.master_bind, master_bind_port=port)
        peers.install(runner, guard)  # before the master's listener first runs (it waits for us to yield)
        worker_argv = [
            sys.executable,
            "-m",
            "loadtui.loadgen.runner",
            "--worker",
            "--master-port",
            str(port),
            "--locustfile",
            args.locustfile,
            "--host",
            args.host,
        ]
        for name in args.user_class:
            worker_argv += ["--user-class", name]
        if args.scenario:
            worker_argv += ["--scenario", args.scenario]
        local = args.processes if args.processes > 1 else 0
        for _ in range(local):
            # Same session and process group as this child, so one signal stops all; they die with us.
            children.append(
                subprocess.Popen(
                    [sys.executable, "-m", "loadtui.procs.launch", "--pdeathsig", "TERM", "--", *worker_argv],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    env=os.environ | {peers.SECRET_ENV: guard.secret},
                )
            )
        expected = local + (args.expect_workers or 0)
        deadline = time.monotonic() + MASTER_WAIT_SECONDS
        while runner.worker_count < expected:
            if time.monotonic() > deadline:
                fail(
                    f"only {runner.worker_count} of {expected} Locust workers connected within "
                    f"{MASTER_WAIT_SECONDS:.0f} s",
                    code=1,
                )
            gevent.sleep(0.1)
        emit(
            {
                "type": "ready",
                "pids": [os.getpid()] + [c.pid for c in children],
                "master_port": port,
                "workers": runner.worker_count,
            }
        )
    else:
        runner = env.create_local_runner()
        emit({"type": "ready", "pids": [os.getpid()], "workers": 0})

    distributed = bool(children) or bool(args.expect_workers)  # a master: its users run in its workers
    from_workers = connections.Counter()  # the workers' retries, as they report them every second

    def add_worker_retries(client_id: str, data: dict[str, Any]) -> None:
        from_workers.total += int(data.get(RETRIES_KEY, 0) or 0)

    env.events.worker_report.add_listener(add_worker_retries)  # type: ignore[no-untyped-call]
    side = OpenSide(env, classes)
    summed = OpenSum()
    env.events.worker_report.add_listener(summed.add)  # type: ignore[no-untyped-call]
    own_seconds = WorkerSeconds()
    env.events.worker_report.add_listener(own_seconds.add)  # type: ignore[no-untyped-call]

    def open_counters() -> Any:
        if distributed:
            return summed.counters(set(runner.clients.keys()))
        return side.model.counters if side.model is not None else None

    def worker_rates() -> WorkerRates | None:
        return own_seconds.rates(set(runner.clients.keys())) if distributed else None

    sampler = Sampler(
        retries=lambda: connections.RETRIES.total + from_workers.total,
        open_model=open_counters,
        worker_rates=worker_rates,
    )

    def report() -> None:
        next_at = time.monotonic() + 1.0
        while True:
            gevent.sleep(max(0.0, next_at - time.monotonic()))
            next_at += 1.0
            record = sampler.sample(runner.stats, runner.user_count or _open_users())
            if distributed:
                record["workers"] = runner.worker_count
                record["refused_workers"] = len(guard.refused)
                record["dropped_messages"] = guard.dropped
            emit(record)

    def _open_users() -> int:
        opened = open_counters()
        return int(opened.users) if opened is not None else 0

    def set_rate(cmd: dict[str, Any]) -> None:
        data: dict[str, Any] = {k: cmd[k] for k in ("rate", "arrivals", "max_in_flight") if k in cmd}
        if not distributed:
            side.set_rate(data)
            return
        summed.active = True
        workers = max(1, runner.worker_count)
        share = dict(data, rate=float(data.get("rate", 0)) / workers)
        share["max_in_flight"] = max(1, -(-int(data.get("max_in_flight", 1000)) // workers))
        runner.send_message(RATE_MESSAGE, share)

    def stop_rate() -> None:
        if distributed and summed.active:
            runner.send_message(RATE_MESSAGE, {"rate": 0})
        side.stop()

    reporter = gevent.spawn(report)
    stdin = FileObjectPosix(sys.stdin.fileno(), "rb", close=False)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when we stop
    try:
        for raw in stdin:
            try:
                cmd = json.loads(raw)
            except ValueError:
                continue
            if cmd.get("cmd") == "start":
                stop_rate()  # users instead of arrivals: one model at a time
                runner.start(int(cmd["users"]), float(cmd.get("spawn_rate", 10)))
            elif cmd.get("cmd") == "rate":
                if runner.user_count:
                    runner.stop()  # arrivals instead of users
                set_rate(cmd)
            elif cmd.get("cmd") == "stop":
                runner.stop()
                stop_rate()
            elif cmd.get("cmd") == "reconnect":
                data = {k: cmd.get(k) for k in ("ports", "spread", "fraction") if k in cmd}
                if distributed:
                    runner.send_message(RECONNECT_MESSAGE, data)
                else:
                    _reconnect(runner, data, side)
            elif cmd.get("cmd") == "draining":
                seconds = float(cmd.get("seconds", 5))
                connections.draining(seconds)
                if distributed:
                    runner.send_message(DRAINING_MESSAGE, seconds)
            elif cmd.get("cmd") == "quit":
                break
    finally:
        reporter.kill()
        runner.quit()
        for child in children:
            child.terminate()
        for child in children:
            try:
                child.wait(3)
            except subprocess.TimeoutExpired:
                child.kill()


if __name__ == "__main__":
    main()
