"""RunConfig validation: every bad input names the problem and the fix."""

from __future__ import annotations

import re
from typing import Any

import pytest

from loadtui.config import SCENARIO_NAMES, RunConfig, check_pool_fits
from loadtui.errors import UsageError


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"workers": 0}, "--workers must be at least 1"),
        ({"pool_min": 11, "pool_max": 10}, "--pool-min 11 is above --pool-max 10"),
        ({"scenario": "nope"}, "unknown scenario 'nope'"),
        ({"users": -1}, "--users"),
        ({"spawn_rate": 0}, "--spawn-rate"),
        ({"locustfile": "/does/not/exist.py"}, "does not exist"),
        ({"app": "uvicorn app:app"}, "must contain {port}"),
        ({"host": "localhost:8000"}, "must be a URL"),
        ({"db_max_connections": 2}, "--db-max-connections"),
        ({"loadgen_processes": 0}, "--loadgen-processes"),
    ],
)
def test_bad_config_is_refused_with_a_clear_message(changes: dict[str, Any], words: str) -> None:
    with pytest.raises(UsageError, match=words.replace("{", r"\{").replace("}", r"\}")):
        RunConfig().replace(**changes)


def test_defaults_are_valid_and_every_scenario_is_accepted() -> None:
    for name in SCENARIO_NAMES:
        RunConfig(scenario=name).validate()
    assert len(SCENARIO_NAMES) == 8


def test_pool_arithmetic_gives_the_numbers() -> None:
    check_pool_fits(RunConfig(workers=4, pool_max=20), 97)
    with pytest.raises(UsageError, match=r"5 workers × pool max 20 = 100 connections exceed the 97"):
        check_pool_fits(RunConfig(workers=5, pool_max=20), 97)
    with pytest.raises(UsageError, match=r"pool min"):
        check_pool_fits(RunConfig(workers=10, pool_min=10, pool_max=10), 97)
    # Per-request mode has no pool to size; external apps are the user's business.
    check_pool_fits(RunConfig(workers=50, pool_max=20, db_mode="per-request"), 97)


def test_needs_restart_lists_startup_fields_only() -> None:
    a = RunConfig()
    b = a.replace(pool_max=20, users=99, access_log=True)
    assert b.needs_restart(a) == ["pool_max", "access_log"]


def test_round_trip_through_the_log_ignores_unknown_fields() -> None:
    cfg = RunConfig(workers=3, scenario="ping")
    assert RunConfig.from_dict(cfg.to_dict() | {"future_field": 1}) == cfg


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"pool_min": -1}, "--pool-min must be ≥ 0"),
        ({"pool_max": 0, "pool_min": 0}, "--pool-max ≥ 1"),
        ({"db_mode": "sometimes"}, "--db-mode must be pool or per-request"),
        ({"sleep_ms": -1}, "--sleep-ms"),
        ({"port": -1}, "--port must be between 0 and 65535"),
        ({"port": 65536}, "--port must be between 0 and 65535"),
        ({"db_max_connections": 4}, "--db-max-connections must be at least 5"),
        ({"spawn_rate": -0.5}, "--spawn-rate must be a number above 0"),
        ({"spawn_rate": float("nan")}, "--spawn-rate must be a number above 0"),
        ({"spawn_rate": float("inf")}, "--spawn-rate must be a number above 0"),
        ({"pool_timeout": 0.0}, "--pool-timeout must be a number of seconds above 0"),
        ({"pool_timeout": float("nan")}, "--pool-timeout must be a number of seconds above 0"),
        ({"expect_remote_workers": 1}, "--expect-workers needs --master-bind"),
        ({"expect_remote_workers": -1}, "--expect-workers must be 0 or more"),
        ({"master_bind": "127.0.0.1:99999"}, "--master-bind must be HOST:PORT with a port from 1 to 65535"),
        ({"master_bind": "127.0.0.1:"}, "--master-bind must be HOST:PORT"),
        ({"master_bind": ":5557"}, "--master-bind must be HOST:PORT"),
        ({"master_bind": "127.0.0.1:5²"}, "--master-bind must be HOST:PORT"),  # a Unicode digit int() refuses
        ({"app": "uvicorn m:app --port {port}", "workers": 2}, "--workers 2 needs {workers} in --app"),
        ({"app": "uvicorn m:app --port {port} --workers 3", "workers": 2}, "starts 3 worker"),
        ({"app": "no-such-program-here m:app --port {port}"}, "is not a program on PATH"),
        ({"host": "ftp://example"}, "must be a URL"),
    ],
)
def test_each_bound_is_refused_just_past_it(changes: dict[str, Any], words: str) -> None:
    with pytest.raises(UsageError, match=words):
        RunConfig().replace(**changes)


@pytest.mark.parametrize(
    "changes",
    [
        {"pool_min": 0},
        {"pool_min": 10, "pool_max": 10},
        {"pool_max": 1, "pool_min": 1},
        {"users": 0},
        {"sleep_ms": 0},
        {"port": 0},
        {"port": 65535},
        {"db_max_connections": 5},
        {"loadgen_processes": 1},
        {"loadgen_processes": "auto"},
        {"db_mode": "per-request"},
        {"host": "https://example.test"},
        {"host": "http://127.0.0.1:8000"},
        {"app": "uvicorn a:app --port {port}"},
        {"spawn_rate": 0.1},
    ],
)
def test_each_bound_itself_is_accepted(changes: dict[str, Any]) -> None:
    RunConfig().replace(**changes)


def test_a_locustfile_replaces_the_scenario_check(tmp_path: Any) -> None:
    path = tmp_path / "locustfile.py"
    path.write_text("")
    RunConfig(locustfile=str(path), scenario="MyUser").validate()  # the user's class names are not our scenarios


def test_pool_fits_exactly_at_the_limit() -> None:
    check_pool_fits(RunConfig(workers=4, pool_max=20, pool_min=2), 80)
    with pytest.raises(UsageError, match=r"80 connections exceed the 79"):
        check_pool_fits(RunConfig(workers=4, pool_max=20, pool_min=2), 79)
    check_pool_fits(RunConfig(workers=4, pool_min=5, pool_max=5), 20)
    with pytest.raises(UsageError, match=r"4 workers × pool min 5 = 20 connections exceed the 19"):
        check_pool_fits(RunConfig(workers=4, pool_min=5, pool_max=5), 19)
    # An app loadtui does not know: its pools are its own business.
    check_pool_fits(RunConfig(workers=50, pool_max=20, app="x --port {port}"), 10)


def test_every_field_the_app_reads_at_start_needs_a_restart() -> None:
    base = RunConfig()
    changes = {"pool_min": 1, "pool_max": 11, "db_mode": "per-request", "access_log": True, "sleep_ms": 5,
               "pool_timeout": 2.0}  # fmt: skip
    for name, value in changes.items():
        assert base.replace(**{name: value}).needs_restart(base) == [name]
    live = {"workers": 2, "users": 7, "spawn_rate": 3.0}
    for name, value in live.items():
        assert base.replace(**{name: value}).needs_restart(base) == []


def test_derived_figures() -> None:
    assert RunConfig(workers=3, pool_max=7).pool_connections == 21
    assert RunConfig().sample_app
    assert not RunConfig(app="x --port {port}").sample_app
    assert not RunConfig(host="http://127.0.0.1:1").sample_app
    assert RunConfig(loadgen_processes=3).loadgen_process_count() == 3


def test_auto_loadgen_processes_leave_half_the_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for cores, expected in ((1, 1), (2, 1), (3, 1), (4, 2), (8, 4), (32, 8), (None, 1)):
        monkeypatch.setattr(os, "cpu_count", lambda c=cores: c)
        assert RunConfig(loadgen_processes="auto").loadgen_process_count() == expected, cores


def test_scenarios_have_distinct_user_classes() -> None:
    from loadtui.config import SCENARIOS, scenario

    assert len({s.user_class for s in SCENARIOS}) == len(SCENARIOS)
    assert scenario("blocking").user_class == "BlockingUser"
    with pytest.raises(UsageError, match="choose one of: crud, ping"):
        scenario("nope")


def _args(*argv: str) -> Any:
    from loadtui.cli import build_headless_parser

    return build_headless_parser().parse_args(["--duration", "5", *argv])


def test_config_from_args_maps_every_option() -> None:
    from loadtui.cli import config_from_args

    cfg = config_from_args(
        _args(
            "--workers",
            "3",
            "--pool-min",
            "1",
            "--pool-max",
            "4",
            "--pool-timeout",
            "2.5",
            "--db-mode",
            "per-request",
            "--access-log",
            "--sleep-ms",
            "7",
            "--users",
            "9",
            "--spawn-rate",
            "3",
            "--scenario",
            "ping",
            "--db-max-connections",
            "50",
            "--port",
            "8123",
            "--loadgen-processes",
            "auto",
            "--master-bind",
            "127.0.0.1:5557",
            "--expect-workers",
            "2",
        )
    )
    assert (cfg.workers, cfg.pool_min, cfg.pool_max, cfg.pool_timeout) == (3, 1, 4, 2.5)
    assert (cfg.db_mode, cfg.access_log, cfg.sleep_ms, cfg.users, cfg.spawn_rate) == ("per-request", True, 7, 9, 3.0)
    assert (cfg.scenario, cfg.db_max_connections, cfg.port, cfg.loadgen_processes) == ("ping", 50, 8123, "auto")
    assert cfg.master_bind == "127.0.0.1:5557"
    assert cfg.expect_remote_workers == 2 and cfg.scenario_given and cfg.rebalance
    assert config_from_args(_args()) == RunConfig()
    plain = config_from_args(_args())
    assert plain.expect_remote_workers == 0 and not plain.scenario_given
    assert not config_from_args(_args("--no-rebalance")).rebalance


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (("--master-bind", "127.0.0.1"), "--master-bind must be HOST:PORT"),
        (("--workers", "0"), "--workers must be at least 1"),
        (("--loadgen-processes", "many"), "expected a number or 'auto'"),
    ],
)
def test_config_from_args_refuses_bad_options(argv: tuple[str, ...], words: str) -> None:
    from loadtui.cli import config_from_args

    with pytest.raises(UsageError, match=words):
        config_from_args(_args(*argv))


def test_record_path_must_be_new_and_in_a_directory(tmp_path: Any) -> None:
    from loadtui.cli import config_from_args

    existing = tmp_path / "old.jsonl"
    existing.write_text("")
    with pytest.raises(UsageError, match="exists already"):
        config_from_args(_args("--record", str(existing)))
    with pytest.raises(UsageError, match="is not a directory"):
        config_from_args(_args("--record", str(existing / "new.jsonl")))
    assert config_from_args(_args("--record", str(tmp_path / "new.jsonl"))).record == str(tmp_path / "new.jsonl")


@pytest.mark.parametrize(
    ("dsn", "secret"),
    [
        ("postgresql://app:s3cret@db.example:5432/app", "s3cret"),
        ("postgresql://:s3cret@db.example/app", "s3cret"),  # no user name
        ("postgresql://app@db/app?%70assword=s3cret", "s3cret"),  # the key percent-encoded
        ("host=db user=app password=s3cret dbname=app", "s3cret"),
        ("host=db user=app password=s3\\ cret dbname=app", "cret"),  # an escaped space
        ("host=db user=app password='s3\\'cret' dbname=app", "cret"),  # an escaped quote
        ("host=db PASSWORD = 's3 cret' dbname=app", "cret"),  # not libpq's spelling: hidden whole
    ],
)
def test_a_dsn_password_is_never_recorded(dsn: str, secret: str) -> None:
    from loadtui.config import redact_dsn

    shown = redact_dsn(dsn)
    assert secret not in shown and "***" in shown, shown
    assert RunConfig(dsn=dsn).to_dict()["dsn"] == shown
    assert RunConfig(dsn=dsn).dsn == dsn  # the session itself still connects with it


def test_a_dsn_without_a_password_is_recorded_as_given() -> None:
    from loadtui.config import redact_dsn

    assert redact_dsn("postgresql://app@db/app") == "postgresql://app@db/app"


@pytest.mark.parametrize("host", ["http://[::1", "http://h:abc", "http://x y", "http://", "http://h:99999"])
def test_a_broken_host_url_is_one_line_not_a_crash(host: str) -> None:
    with pytest.raises(UsageError, match="--host"):
        RunConfig(host=host).validate()


def test_host_credentials_are_never_recorded() -> None:
    recorded = RunConfig(host="http://me:s3cret@127.0.0.1:8000/api").to_dict()["host"]
    assert recorded == "http://me:***@127.0.0.1:8000/api"


@pytest.mark.parametrize("speed", ["0", "nan", "-1", "inf"])
def test_replay_refuses_a_speed_that_is_not_a_positive_number(
    tmp_path: Any, speed: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from loadtui.cli import main
    from tests.helpers import write_session_log

    log = write_session_log(tmp_path / "s.jsonl", segments=1, seconds=2)
    assert main(["replay", str(log), "--speed", speed]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--speed must be a number above 0" in err[0]


@pytest.mark.parametrize("bind", ["127.0.0.1:1", "127.0.0.1:65535", "[::1]:5557", "host.example:5557"])
def test_master_bind_accepts_every_valid_port(bind: str) -> None:
    RunConfig(master_bind=bind, expect_remote_workers=1).validate()


@pytest.mark.parametrize("bind", ["127.0.0.1:0", "127.0.0.1:65536", "127.0.0.1:x"])
def test_master_bind_refuses_other_ports(bind: str) -> None:
    with pytest.raises(UsageError, match="port from 1 to 65535"):
        RunConfig(master_bind=bind).validate()


def test_a_short_pool_timeout_is_fine() -> None:
    RunConfig(pool_timeout=0.5).validate()
    with pytest.raises(UsageError, match="--expect-workers needs --master-bind HOST:PORT"):
        RunConfig(expect_remote_workers=1).validate()


@pytest.mark.parametrize(
    ("app", "says"),
    [
        ("uvicorn x:app --port {port} {oops}", "uses {oops}, which loadtui does not fill"),
        ('uvicorn "x:app --port {port}', "no closing quotation; balance the quotes"),
        ("uvicorn x:app --port {port} {", "Single '{' encountered"),
        ("uvicorn x:app --port 8000", "--app must contain {port}"),
        ("   ", "--app is empty"),
    ],
)
def test_bad_app_commands_are_refused_naming_the_fix(app: str, says: str) -> None:
    with pytest.raises(UsageError, match=re.escape(says)):
        RunConfig(app=app).validate()


def test_an_app_command_may_hold_literal_braces_and_quotes() -> None:
    RunConfig(app="python -c 'import app; app.run({{\"a\": 1}})' --port {port} --host {host} -w {workers}").validate()


GIB = 2**30


@pytest.mark.parametrize(
    ("config", "says"),
    [
        (RunConfig(workers=200), "--workers 200 is more than this machine holds: at most 102"),
        (RunConfig(users=10_000_000), "--users 10,000,000 is more than this machine holds: at most 18,976"),
        (RunConfig(loadgen_processes=500), "--loadgen-processes 500 is more than 2 cores can run: at most 8"),
        (RunConfig(db_max_connections=100_000), "--db-max-connections 100,000 is absurd"),
        (RunConfig(host="http://127.0.0.1:9", workers=4), "--workers has no effect with --host"),
        (RunConfig(host="http://127.0.0.1:9", access_log=True), "--access-log has no effect with --host"),
    ],
)
def test_what_the_machine_cannot_hold_is_refused_with_the_limit(config: RunConfig, says: str) -> None:
    from loadtui.config import check_fits_machine

    with pytest.raises(UsageError, match=re.escape(says)):
        check_fits_machine(config, memory_bytes=8 * GIB, cores=2, open_files=20_000)


def test_what_fits_passes() -> None:
    from loadtui.config import check_fits_machine

    check_fits_machine(RunConfig(workers=8, users=5000), memory_bytes=8 * GIB, cores=2, open_files=20_000)
    check_fits_machine(
        RunConfig(host="http://127.0.0.1:9", users=100), memory_bytes=8 * GIB, cores=2, open_files=1024 + 100
    )


@pytest.mark.parametrize(
    "app",
    [
        "uvicorn m:app --port {port} --workers {workers}",
        "uvicorn m:app --port {port} --workers 2",  # the count written in: loadtui waits for the same
        "uvicorn m:app --port {port} --workers=2",
    ],
)
def test_an_app_command_that_starts_the_asked_workers_is_taken(app: str) -> None:
    RunConfig(app=app, workers=2).validate()


@pytest.mark.parametrize(
    ("app", "host", "safe"),
    [
        (None, None, True),  # the sample app: uvicorn
        ("uvicorn m:app --port {port} --workers {workers}", None, True),
        ("python -m uvicorn m:app --port {port} --workers {workers}", None, True),
        ("/venv/bin/uvicorn m:app --port {port} --workers {workers}", None, True),
        ("python -m loadtui.serve m:app --port {port} --workers {workers}", None, True),
        ("gunicorn -k uvicorn.workers.UvicornWorker m:app -b :{port} -w {workers}", None, True),
        ("hypercorn m:app --bind :{port} --workers {workers}", None, False),
        (None, "http://127.0.0.1:8000", False),
    ],
)
def test_only_servers_that_close_idle_connections_get_any_method_retried(app: str | None, host: str | None,
                                                                          safe: bool) -> None:  # fmt: skip
    assert RunConfig(app=app, host=host).closes_only_idle_connections is safe
