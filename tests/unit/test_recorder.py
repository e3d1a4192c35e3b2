"""The session log: written line by line, read back tolerantly, refused clearly when foreign."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from loadtui.config import RunConfig
from loadtui.errors import UsageError
from loadtui.model import Event, Finding, Tick
from loadtui.recorder import Recorder, read_log
from tests.helpers import tick


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
