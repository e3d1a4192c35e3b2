"""Bad input, word for word and at its edges: the one line each refusal prints, and the limits it is drawn at.

test_config.py states which inputs are refused; these tables pin the exact line (what a user reads, with the fix)
and the values on either side of every limit.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest

from loadtui.config import (
    MIB,
    RunConfig,
    _literal_workers,
    app_path,
    check_app_command,
    check_fits_machine,
    check_host,
    redact_dsn,
    redact_url,
)
from tests.helpers import refused


def refusal(**settings: Any) -> str:
    return refused(RunConfig(**settings).validate)


@pytest.mark.parametrize(
    ("settings", "line"),
    [
        ({"pool_min": -1}, "--pool-min must be ≥ 0 and --pool-max ≥ 1"),
        ({"pool_min": 0, "pool_max": 0}, "--pool-min must be ≥ 0 and --pool-max ≥ 1"),
        ({"rate": -0.5}, "--rate must be a number of requests per second from 0 to 1,000,000 (got -0.5)"),
        ({"rate": 1_000_000.5}, "--rate must be a number of requests per second from 0 to 1,000,000 (got 1000000.5)"),
        ({"arrivals": "Poisson"}, "--arrivals must be uniform or poisson (got 'Poisson')"),
        ({"max_in_flight": 0}, "--max-in-flight must be at least 1 (got 0)"),
        ({"expect_remote_workers": 2}, "--expect-workers needs --master-bind HOST:PORT, where the remote workers "
         "connect"),
        ({"loadgen_processes": 0}, "--loadgen-processes must be at least 1 or 'auto'"),
    ],
)  # fmt: skip
def test_a_refused_setting_is_one_exact_line(settings: dict[str, Any], line: str) -> None:
    assert refusal(**settings) == line


@pytest.mark.parametrize(
    "settings",
    [{"rate": 0.0}, {"rate": 1_000_000.0}, {"arrivals": "poisson"}, {"arrivals": "uniform"}, {"max_in_flight": 1},
     {"pool_min": 0, "pool_max": 1}],
)  # fmt: skip
def test_the_edges_of_each_limit_are_accepted(settings: dict[str, Any]) -> None:
    RunConfig(**settings).validate()


@pytest.mark.parametrize(
    ("words", "workers"),
    [
        (["gunicorn", "-w", "3", "app:app"], 3),
        (["uvicorn", "app:app", "--workers", "2"], 2),
        (["uvicorn", "app:app", "--workers=4"], 4),
        (["uvicorn", "app:app", "--workers=4=5"], None),
        (["uvicorn", "app:app", "--workers"], None),
        (["uvicorn", "app:app", "-W", "2"], None),
        (["uvicorn", "app:app", "--port", "8000"], None),
    ],
)
def test_the_worker_count_an_app_command_writes(words: list[str], workers: int | None) -> None:
    assert _literal_workers(words) == workers


def test_the_app_s_path_adds_loadtui_s_python_folder_once(monkeypatch: pytest.MonkeyPatch) -> None:
    here = str(Path(sys.executable).parent)
    monkeypatch.setenv("PATH", "/usr/bin")
    assert app_path() == f"/usr/bin{os.pathsep}{here}"
    monkeypatch.setenv("PATH", f"/usr/bin{os.pathsep}{here}")
    assert app_path() == f"/usr/bin{os.pathsep}{here}"
    monkeypatch.setenv("PATH", "")
    assert app_path() == here
    monkeypatch.delenv("PATH")
    assert app_path() == f"{os.defpath}{os.pathsep}{here}"


@pytest.mark.parametrize(
    ("app", "workers", "line"),
    [
        ("uvicorn x:app --port {port} --x {nope}", 1, "--app uses {nope}, which loadtui does not fill; use {host}, "
         "{port}, {workers} (a literal brace is {{ or }})"),
        ("uvicorn x:app --port {port}", 2, "--workers 2 needs {workers} in --app (e.g. ... --workers {workers}), or "
         "loadtui cannot start or change them; or leave --workers out to run the app as its command says"),
        ("uvicorn x:app --port {port} --workers 3", 2, "--app starts 3 worker(s) (its own --workers 3) but --workers "
         "asks for 2: write --workers {workers} in the command, or give the same number"),
    ],
)  # fmt: skip
def test_a_bad_app_command_is_one_exact_line(app: str, workers: int, line: str) -> None:
    assert refused(lambda: check_app_command(app, workers)) == line


def test_a_program_in_braces_is_not_looked_up_on_the_path() -> None:
    check_app_command("{host} --port {port}")  # the program is filled in later: nothing to find yet


GIB = 1024 * MIB


@pytest.mark.parametrize(
    ("settings", "memory", "line"),
    [
        ({"host": "http://127.0.0.1:9", "pool_max": 20}, GIB, "--pool-max has no effect with --host: loadtui does "
         "not start that app; drop it, or use --app to let loadtui start and configure it"),
        ({"workers": 13}, GIB, "--workers 13 is more than this machine holds: at most 12 (each worker takes about 80 "
         "MiB; 1,024 MiB are available)"),
        ({"workers": 2}, 10 * MIB, "--workers 2 is more than this machine holds: at most 1 (each worker takes about "
         "80 MiB; 10 MiB are available)"),
        ({"workers": 257}, 100 * GIB, "--workers 257 is more than this machine holds: at most 256 (each worker takes "
         "about 80 MiB; 102,400 MiB are available)"),
        ({"rate": 10.0, "max_in_flight": 3_073, "loadgen_processes": 1}, GIB, "--max-in-flight 3,073 is more than "
         "this machine holds: at most 3,072 (each arrival in flight keeps a connection open: 4,096 open files allowed)"),
        ({"users": 3_073, "loadgen_processes": 1}, GIB, "--users 3,073 is more than this machine holds: at most 3,072 (each user keeps a "
         "connection open: 4,096 open files allowed, 1,024 MiB available)"),
        ({"users": 5}, MIB // 8, "--users 5 is more than this machine holds: at most 1 (each user keeps a connection "
         "open: 4,096 open files allowed, 0 MiB available)"),
        ({"users": 4_097, "loadgen_processes": 2}, GIB, "--users 4,097 is more than this machine holds: at most 4,096 "
         "(each user keeps a connection open: 4,096 open files allowed, 1,024 MiB available)"),
        ({"loadgen_processes": 9}, GIB, "--loadgen-processes 9 is more than 2 cores can run: at most 8, or auto"),
        ({"db_max_connections": 10_001}, GIB, "--db-max-connections 10,001 is absurd for the embedded server: at "
         "most 10,000"),
    ],
)  # fmt: skip
def test_what_the_machine_cannot_hold_is_one_exact_line(settings: dict[str, Any], memory: int, line: str) -> None:
    assert refused(lambda: check_fits_machine(RunConfig(**settings), memory, cores=2, open_files=4_096)) == line


@pytest.mark.parametrize(
    "settings",
    [{"workers": 12}, {"users": 3_072, "loadgen_processes": 1}, {"users": 4_096, "loadgen_processes": 2},
     {"rate": 10.0, "max_in_flight": 3_072, "loadgen_processes": 1}, {"loadgen_processes": 8},
     {"db_max_connections": 10_000}],
)  # fmt: skip
def test_what_the_machine_holds_exactly_is_accepted(settings: dict[str, Any]) -> None:
    check_fits_machine(RunConfig(**settings), GIB, cores=2, open_files=4_096)


def test_a_dsn_keeps_everything_but_its_password() -> None:
    assert redact_dsn("host=db user=app password=s3cret dbname=x port=5433") == (
        "user=app password=*** dbname=x host=db port=5433"
    )
    assert redact_dsn("host=db user=app") == "host=db user=app"
    assert redact_dsn("host='unbalanced") == "*** (a DSN that does not parse)"


def test_a_url_keeps_its_user_host_and_path_but_not_its_password() -> None:
    assert redact_url("http://me:pw@example.com:8000/x?y=1") == "http://me:***@example.com:8000/x?y=1"
    assert redact_url("http://:pw@example.com/") == "http://:***@example.com/"
    assert redact_url("http://a@b:pw@example.com/") == "http://a@b:***@example.com/"


@pytest.mark.parametrize(
    ("host", "line"),
    [
        ("http://127.0.0.1:99999", "--host 'http://127.0.0.1:99999' is not a valid URL (Port out of range 0-65535); "
         "give a URL like http://127.0.0.1:8000"),
        ("http://:8000", "--host 'http://:8000' has no host name, or spaces in it; give a URL like "
         "http://127.0.0.1:8000"),
    ],
)  # fmt: skip
def test_a_bad_host_is_one_exact_line(host: str, line: str) -> None:
    assert refused(lambda: check_host(host)) == line


def test_the_defaults_a_user_gets_without_options() -> None:
    assert RunConfig().to_dict() == {
        "workers": 1, "pool_min": 2, "pool_max": 10, "db_mode": "pool", "access_log": False, "users": 50,
        "spawn_rate": 10.0, "rate": None, "arrivals": "uniform", "max_in_flight": 1000, "scenario": "crud",
        "sleep_ms": 50, "pool_timeout": 10.0, "dsn": None, "db_max_connections": 100, "fast_db": False, "app": None,
        "host": None, "port": 0, "locustfile": None, "loadgen_processes": 1, "master_bind": None, "record": None,
        "rebalance": True, "probe": True, "auto_confirm": True, "stats_listen": None, "expect_remote_workers": 0,
        "scenario_given": False,
    }  # fmt: skip


def test_the_embedded_server_keeps_three_slots_for_superusers() -> None:
    from loadtui.config import EMBEDDED_RESERVED, check_pool_fits

    assert EMBEDDED_RESERVED == 3  # PostgreSQL's superuser_reserved_connections default, which the server keeps
    check_pool_fits(RunConfig(workers=9, pool_max=10, pool_min=2), 97)  # 90 of 100 - 3
