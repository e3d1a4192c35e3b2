"""The `loadtui` command: every option in one place (DESIGN 3.1).

    loadtui [OPTIONS]                        the dashboard
    loadtui headless --duration 30 [OPTIONS] the same session, a line per second and a summary
    loadtui headless --vary workers=1,2,4    a sweep: a step per value, and the verdict (add --slo for CI)
    loadtui replay FILE                      the dashboard on a recorded session
    loadtui report FILE [FILE ...] -o report.html
    loadtui compare BASE NEW [--max-regression 10%]  did it get slower? segment by segment, with intervals

Bad input ends with one line on stderr naming the problem and the fix, and exit status 2; never a traceback.
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

import psutil

from loadtui import __version__
from loadtui.appstats import STATS_TOKEN_ENV
from loadtui.config import EMBEDDED_RESERVED, SCENARIO_NAMES, RunConfig, check_fits_machine, check_pool_fits
from loadtui.errors import RunFailed, UsageError
from loadtui.results.compare import DEFAULT_MAX_REGRESSION, parse_percent
from loadtui.results.verdict import Slo, parse_slo, parse_vary
from loadtui.session.plan import DEFAULT_STEP_S, Plan

COMMANDS = ("headless", "replay", "report", "compare")


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (argparse prints the usage block and a second line)."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def _int_or_auto(value: str) -> int | str:
    if value == "auto":
        return value
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or 'auto', got {value!r}") from None


def add_run_options(p: argparse.ArgumentParser) -> None:
    """Options shared by the dashboard and headless mode."""
    d = RunConfig()
    app = p.add_argument_group("app")
    app.add_argument("--workers", type=int, default=d.workers, help="uvicorn worker processes (default %(default)s)")
    app.add_argument(
        "--pool-min", type=int, default=d.pool_min, help="sample app: pool min size per worker (default %(default)s)"
    )
    app.add_argument(
        "--pool-max", type=int, default=d.pool_max, help="sample app: pool max size per worker (default %(default)s)"
    )
    app.add_argument(
        "--pool-timeout",
        type=float,
        default=d.pool_timeout,
        help="sample app: seconds a request waits for a pooled connection (default %(default)g)",
    )
    app.add_argument(
        "--db-mode",
        choices=("pool", "per-request"),
        default=d.db_mode,
        help="sample app: a connection pool per worker, or a new connection for every request (slower, and it "
        "runs out of connections under load) (default %(default)s)",
    )
    app.add_argument(
        "--access-log",
        action=argparse.BooleanOptionalAction,
        default=d.access_log,
        help="uvicorn's access log (default off)",
    )
    app.add_argument(
        "--sleep-ms",
        type=int,
        default=d.sleep_ms,
        help="the sleep scenarios' and the slow query's unit of work, in ms (default %(default)s)",
    )
    app.add_argument(
        "--app",
        default=None,
        metavar="CMD",
        help="your app: a command with {host}, {port}, {workers}, e.g. "
        '"uvicorn myapp:app --host {host} --port {port} --workers {workers}"',
    )
    app.add_argument("--host", default=None, metavar="URL", help="drive an app that is already running at URL")
    app.add_argument("--port", type=int, default=0, help="port for the app loadtui starts (default: a free one)")
    load = p.add_argument_group("load")
    load.add_argument("--users", type=int, default=None, help=f"simulated users, each looping (default {d.users})")
    load.add_argument(
        "--rate",
        type=float,
        default=None,
        metavar="REQ/S",
        help="load by arrival rate instead of users: start this many of the locustfile's tasks per second whether "
        "or not earlier ones were answered, latency measured from each one's intended start (the open model)",
    )
    load.add_argument(
        "--arrivals",
        choices=("uniform", "poisson"),
        default=d.arrivals,
        help="with --rate: evenly spaced arrivals, or a Poisson process (default %(default)s)",
    )
    load.add_argument(
        "--max-in-flight",
        type=int,
        default=d.max_in_flight,
        metavar="N",
        help="with --rate: tasks running at once at most; arrivals beyond are dropped and counted (default %(default)s)",
    )
    load.add_argument(
        "--spawn-rate",
        type=float,
        default=d.spawn_rate,
        help="users started per second, after a first 2 s at one user per worker (the no-queue baseline the "
        "diagnosis compares with) (default %(default)g)",
    )
    load.add_argument("--scenario", default=None, help=f"one of {', '.join(SCENARIO_NAMES)} (default crud)")
    load.add_argument("--locustfile", default=None, metavar="PATH", help="your own locustfile")
    load.add_argument(
        "--loadgen-processes",
        type=_int_or_auto,
        default=1,
        metavar="N|auto",
        help="Locust processes: a master with N workers when N > 1; auto leaves a core to the app (default 1)",
    )
    load.add_argument(
        "--master-bind",
        default=None,
        metavar="HOST:PORT",
        help="let remote `locust --worker` processes join at HOST:PORT (default: private). Anyone who reaches the "
        "port can try to join: bind a private address, firewall it; workers beyond the expected are refused",
    )
    load.add_argument(
        "--rebalance",
        action=argparse.BooleanOptionalAction,
        default=d.rebalance,
        help="after a worker change or restart, spread the users' connections over the workers (default on)",
    )
    load.add_argument(
        "--probe",
        action=argparse.BooleanOptionalAction,
        default=d.probe,
        help="send 4 requests/s to an unrouted path to tell a blocked event loop from waiting inside the app (default on)",
    )
    load.add_argument(
        "--auto-confirm",
        action=argparse.BooleanOptionalAction,
        default=d.auto_confirm,
        help="when a finding starts, sample the busiest workers' stacks once with py-spy (needs ptrace; default on)",
    )
    load.add_argument(
        "--expect-workers", type=int, default=0, metavar="N", help="wait for N remote Locust workers before starting"
    )
    app.add_argument(
        "--stats-listen",
        default=None,
        metavar="HOST:PORT",
        help="receive per-worker figures over UDP from apps loadtui did not start (their workers run with "
        "LOADTUI_STATS_URL=udp://HOST:PORT); beyond loopback, LOADTUI_STATS_TOKEN must be set on both sides",
    )
    db = p.add_argument_group("database")
    db.add_argument("--dsn", default=None, help="an external PostgreSQL (default: an embedded server)")
    db.add_argument(
        "--db-max-connections",
        type=int,
        default=d.db_max_connections,
        help="max_connections of the embedded server (default %(default)s)",
    )
    db.add_argument(
        "--fast-db",
        action="store_true",
        help="run the embedded server without fsync and synchronous commit: faster writes, but rows committed "
        "just before a crash are lost (default: PostgreSQL's durable settings)",
    )
    p.add_argument("--record", default=None, metavar="PATH", help="session log path (default ./loadtui-sessions/…)")
    sweep = p.add_argument_group("sweeps and objectives")
    sweep.add_argument(
        "--vary",
        action="append",
        default=[],
        metavar="KEY=V1,V2,…",
        help="run one step per value (repeatable: the product of the lists) and say which configuration won; KEY is "
        "workers, users, pool-min, pool-max, db-mode, access-log or scenario; users=auto searches for the knee",
    )
    sweep.add_argument(
        "--step",
        type=float,
        default=DEFAULT_STEP_S,
        metavar="SECONDS",
        help="seconds measured per step, after it has settled (default %(default)g)",
    )
    sweep.add_argument(
        "--slo",
        action="append",
        default=[],
        metavar="EXPR",
        help="an objective: 'p50|p95|p99 < N ms', 'fail < N %%' or 'rps > N' (repeatable); headless exits 3 "
        "when it is missed",
    )
    base = p.add_argument_group("baseline")
    base.add_argument(
        "--baseline",
        type=Path,
        default=None,
        metavar="LOG",
        help="a recorded session to compare with: the dashboard shows the live figures against it; headless "
        "compares the run with it at the end (see loadtui compare)",
    )
    base.add_argument(
        "--max-regression",
        default=f"{DEFAULT_MAX_REGRESSION:g}%",
        metavar="PCT",
        help="with --baseline, headless exits 4 when a figure is significantly worse by more than this "
        "(default %(default)s)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The dashboard's parser (the default command)."""
    p = _Parser(
        prog="loadtui",
        usage="loadtui [OPTIONS]  |  loadtui {headless,replay,report} ...",
        description="Why is my FastAPI app slow under load while the CPU is idle? Opens the dashboard on the "
        "options below. Other commands (each has --help): `loadtui headless --duration 30` the same without a "
        "terminal UI (for scripts and CI); `loadtui replay FILE` a recorded session; `loadtui report FILE "
        "[FILE ...] -o report.html` an HTML report with plots.",
    )
    p.add_argument("--version", action="version", version=f"loadtui {__version__}")
    add_run_options(p)
    return p


def build_headless_parser() -> argparse.ArgumentParser:
    """`loadtui headless`."""
    p = _Parser(prog="loadtui headless", description="Run a session without the dashboard.")
    p.add_argument("--duration", type=float, default=None, help="seconds of load (with --vary: optional, a cap)")
    p.add_argument(
        "--verbose",
        action="store_true",
        help="print each stack sample in full (by default one line per finding; the log keeps every stack)",
    )
    add_run_options(p)
    return p


def config_from_args(args: argparse.Namespace) -> RunConfig:
    """The RunConfig the options describe (validated)."""
    config = RunConfig(
        workers=args.workers,
        pool_min=args.pool_min,
        pool_max=args.pool_max,
        pool_timeout=args.pool_timeout,
        db_mode=args.db_mode,
        access_log=args.access_log,
        sleep_ms=args.sleep_ms,
        users=_users(args),
        spawn_rate=args.spawn_rate,
        rate=_rate(args),
        arrivals=args.arrivals,
        max_in_flight=args.max_in_flight,
        scenario=args.scenario or "crud",
        dsn=args.dsn,
        db_max_connections=args.db_max_connections,
        fast_db=args.fast_db,
        app=args.app,
        host=args.host,
        port=args.port,
        locustfile=args.locustfile,
        loadgen_processes=args.loadgen_processes,
        master_bind=args.master_bind,
        record=args.record,
        rebalance=args.rebalance,
        probe=args.probe,
        expect_remote_workers=args.expect_workers or 0,
        stats_listen=args.stats_listen,
        auto_confirm=args.auto_confirm,
        scenario_given=args.scenario is not None,
    )
    config.validate()
    _check_machine(config)
    if config.stats_listen is not None:
        from loadtui.measure.remote import parse_listen

        parse_listen(config.stats_listen, os.environ.get(STATS_TOKEN_ENV) or None)
    if args.record is not None:
        _check_record_path(Path(args.record))
    return config


def _rate(args: argparse.Namespace) -> float | None:
    """`--rate`; a sweep of rates (`--vary rate=…`) starts at its first rate, by arrivals from the first second."""
    if args.rate is not None:
        return float(args.rate)
    for text in getattr(args, "vary", None) or []:
        if text.partition("=")[0].strip() == "rate":
            return float(parse_vary(text).values[0])
    return None


def _users(args: argparse.Namespace) -> int:
    """`--users`, refused beside `--rate` (each picks the load model)."""
    if _rate(args) is not None and args.users is not None:
        raise UsageError(
            "--users and --rate each choose how the load comes (users looping, or arrivals per second); give one"
        )
    return RunConfig().users if args.users is None else args.users


def sweep_from_args(args: argparse.Namespace, config: RunConfig) -> tuple[Plan | None, list[Slo]]:
    """The plan `--vary` describes (checked against `config`) and the `--slo` objectives."""
    slos = [parse_slo(text) for text in args.slo]
    if not (math.isfinite(args.step) and args.step >= 3):
        raise UsageError(f"--step must be at least 3 seconds (got {args.step:g}), e.g. --step 20")
    if not args.vary:
        return None, slos
    plan = Plan.from_varies([parse_vary(text) for text in args.vary])
    plan.check(config)
    for step in plan.steps:
        try:
            _check_machine(config.replace(**step.changes))
        except UsageError as exc:
            raise UsageError(f"--vary step “{step.label}”: {exc}") from None
    return plan, slos


def _check_machine(config: RunConfig) -> None:
    """What this machine, and the embedded server's connection limit, cannot hold: refused before anything starts."""
    check_fits_machine(
        config,
        memory_bytes=psutil.virtual_memory().available,
        cores=os.cpu_count() or 1,
        open_files=resource.getrlimit(resource.RLIMIT_NOFILE)[1],
    )
    if config.dsn is None and config.host is None:
        check_pool_fits(config, config.db_max_connections - EMBEDDED_RESERVED)


def _max_regression(text: str) -> float:
    try:
        return parse_percent(text)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def baseline_from_args(args: argparse.Namespace) -> tuple[Any, float]:
    """The `--baseline` session log (read now: a bad file is refused before anything starts) and the allowed
    regression in percent."""
    limit = _max_regression(args.max_regression)
    if args.baseline is None:
        return None, limit
    from loadtui.results.recorder import read_log

    log = read_log(args.baseline, slim=True)
    if not log.ticks:
        raise UsageError(f"--baseline {args.baseline} holds no seconds of measurements; record a longer session")
    return log, limit


def _check_record_path(path: Path) -> None:
    if path.exists():
        raise UsageError(f"--record {path} exists already; choose a new file name")
    parent = path.parent if str(path.parent) else Path(".")
    if parent.exists() and not parent.is_dir():
        raise UsageError(f"--record {path}: {parent} is not a directory; pass a writable path")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        return _dispatch(args)
    except UsageError as exc:
        sys.stderr.write(f"loadtui: {exc}\n")
        return 2
    except RunFailed as exc:
        sys.stderr.write(f"loadtui: {exc}\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write("loadtui: interrupted\n")
        return 130


def _dispatch(args: list[str]) -> int:
    command = args[0] if args and args[0] in COMMANDS else None
    if command == "headless":
        ns = build_headless_parser().parse_args(args[1:])
        if ns.duration is None and not ns.vary:
            raise UsageError("headless needs --duration SECONDS (or a sweep: --vary KEY=V1,V2,…)")
        if ns.duration is not None and not (math.isfinite(ns.duration) and ns.duration > 0):
            raise UsageError(f"--duration must be a number of seconds above 0 (got {ns.duration})")
        config = config_from_args(ns)
        plan, slos = sweep_from_args(ns, config)
        baseline, max_regression = baseline_from_args(ns)
        from loadtui import headless

        return headless.run(
            config,
            ns.duration,
            confirm=config.auto_confirm,
            plan=plan,
            slos=slos,
            step_s=ns.step,
            verbose=ns.verbose,
            baseline=baseline,
            max_regression=max_regression,
        )
    if command == "replay":
        p = _Parser(prog="loadtui replay", description="Open the dashboard on a recorded session.")
        p.add_argument("file", type=Path)
        p.add_argument("--speed", type=float, default=1.0, help="playback speed (default 1×)")
        ns = p.parse_args(args[1:])
        if not (math.isfinite(ns.speed) and ns.speed > 0):
            raise UsageError(f"--speed must be a number above 0 (got {ns.speed}), e.g. 1 or 4")
        from loadtui.results.recorder import read_log

        log = read_log(ns.file)
        from loadtui.tui.run import run_replay

        return run_replay(log, speed=ns.speed)
    if command == "report":
        p = _Parser(prog="loadtui report", description="Write an HTML report (and CSV) from session logs.")
        p.add_argument("files", type=Path, nargs="+")
        p.add_argument(
            "-o",
            "--output",
            type=Path,
            default=Path("report.html"),
            help="the HTML file to write (default %(default)s)",
        )
        p.add_argument("--csv", type=Path, default=None, metavar="DIR", help="also export ticks and segments as CSV")
        ns = p.parse_args(args[1:])
        from loadtui.results.report import write_report

        return write_report(ns.files, ns.output, ns.csv)
    if command == "compare":
        p = _Parser(
            prog="loadtui compare",
            description="Compare two recorded sessions segment by segment: each figure's change with a 95% interval, "
            "and whether it is a regression. Exit status 4 when a figure is significantly worse by more than "
            "--max-regression, 0 otherwise (a comparison that cannot be trusted says why and gives no verdict).",
        )
        p.add_argument("base", type=Path, help="the baseline session log")
        p.add_argument("new", type=Path, help="the session log to judge against it")
        p.add_argument(
            "--max-regression",
            default=f"{DEFAULT_MAX_REGRESSION:g}%",
            metavar="PCT",
            help="how much worse a figure may be before it fails the gate (default %(default)s)",
        )
        ns = p.parse_args(args[1:])
        from loadtui.results.compare import EXIT_REGRESSION, compare, format_comparison
        from loadtui.results.recorder import read_log

        limit = _max_regression(ns.max_regression)
        base, new = read_log(ns.base, slim=True), read_log(ns.new, slim=True)
        result = compare(base, new, limit)
        print(format_comparison(result, ns.base.name, ns.new.name))
        return EXIT_REGRESSION if result.regressions else 0
    ns = build_parser().parse_args(args)
    config = config_from_args(ns)
    plan, slos = sweep_from_args(ns, config)
    baseline, _ = baseline_from_args(ns)
    from loadtui.tui.run import run_dashboard

    return run_dashboard(config, plan=plan, slos=slos, step_s=ns.step, baseline=baseline)
