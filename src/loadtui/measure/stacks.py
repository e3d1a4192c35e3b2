"""Confirm a diagnosis with a stack dump: `py-spy dump` of the suspect workers, summarized in a line per worker.

py-spy reads a running Python process's stacks from outside (ptrace), in about 25 ms, without changing it. A blocked
event loop shows as the main thread inside an endpoint *below* the loop's `_run_once`; a free loop sits in `select`.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from loadtui.model import Tick

DUMP_TIMEOUT_S = 10.0
SAMPLES = 3
"""Dumps per worker when confirming (about 25 ms each)."""

_THREAD = re.compile(r'^Thread (?P<tid>0x[0-9a-fA-F]+|\d+) \((?P<state>[^)]*)\)(?:: "(?P<name>.*)")?')
_FRAME = re.compile(r"^\s+(?P<function>.+?) \((?P<file>[^()]*?):(?P<line>\d+)\)$")

LIBRARY_PREFIXES = (
    "asyncio/",
    "concurrent/",
    "multiprocessing/",
    "threading.py",
    "selectors.py",
    "socket.py",
    "ssl.py",
    "queue.py",
    "uvicorn/",
    "starlette/",
    "fastapi/",
    "anyio/",
    "psycopg/",
    "psycopg_pool/",
    "loadtui/",
    "h11/",
    "httptools/",
    "uvloop/",
    "<string>",
    "runpy.py",
    "<frozen",
    "contextlib.py",
    "functools.py",
)
"""Plumbing, by the short file names py-spy prints without `--full-filenames` (a dump kept from elsewhere)."""

SERVER_PACKAGES = (
    "uvicorn/",
    "starlette/",
    "fastapi/",
    "anyio/",
    "sniffio/",
    "h11/",
    "httptools/",
    "uvloop/",
    "gunicorn/",
    "click/",
    "loadtui/",
)
"""Installed packages that carry a request from the socket to an endpoint: never the app's code, even when the app
itself is installed next to them."""

_STDLIB = re.compile(r"/lib/python\d+\.\d+/(?!(?:site|dist)-packages/)")
_INSTALLED = re.compile(r"/(?:site|dist)-packages/")
_OWN_PACKAGE = str(Path(__file__).resolve().parent.parent) + os.sep
"""loadtui's own files (an editable install keeps them outside site-packages): plumbing too."""


def _short(file: str) -> str:
    """A full file name as a reader wants it: an installed module by its package path (`http/client.py`,
    `fastapi/routing.py`), the app's own file relative to the working directory when it is under it."""
    if not file.startswith(os.sep):
        return file
    for pattern in (_INSTALLED, _STDLIB):
        if found := list(pattern.finditer(file)):
            return file[found[-1].end() :]
    if file.startswith(_OWN_PACKAGE):
        return "loadtui/" + file[len(_OWN_PACKAGE) :]
    cwd = os.getcwd() + os.sep
    return file[len(cwd) :] if file.startswith(cwd) else file


NO_PTRACE_HINT = (
    "py-spy may not read other processes here (no ptrace permission): run loadtui as root or as the app's user with "
    "kernel.yama.ptrace_scope=0, or give the container --cap-add SYS_PTRACE"
)


class StackDumpError(Exception):
    """py-spy could not dump a process; the message says why in one line."""


@dataclass(frozen=True)
class Frame:
    """One frame of a thread's stack (innermost first in a :class:`Thread`)."""

    function: str
    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.function} ({_short(self.file)}:{self.line})"

    @property
    def is_library(self) -> bool:
        """True for frames of the standard library, of installed packages and of loadtui itself: not the app's own
        files. py-spy's full file names tell them apart by where they live; a short name, by the plumbing's names."""
        if self.file.startswith("<"):  # <frozen runpy>, <string>
            return True
        if not self.file.startswith(os.sep):
            return self.file.startswith(LIBRARY_PREFIXES) or "site-packages/" in self.file
        return bool(_STDLIB.search(self.file) or _INSTALLED.search(self.file)) or self.file.startswith(_OWN_PACKAGE)

    @property
    def is_installed_app(self) -> bool:
        """An installed package's frame outside the standard library and the server: an app installed with pip (the
        bundled sample app after `pip install .`) or a library it calls."""
        if not self.file.startswith(os.sep) or not _INSTALLED.search(self.file):
            return False
        return not _short(self.file).startswith(SERVER_PACKAGES)


@dataclass(frozen=True)
class Thread:
    """A thread of a dumped process."""

    tid: str
    name: str
    active: bool
    frames: list[Frame] = field(default_factory=list)

    @property
    def loop_at(self) -> int | None:
        """Where the event loop is on this stack (innermost first): asyncio's `_run_once`, or, for a loop written in C
        (uvloop), the `asyncio.run` frame that started it; None on a thread without a loop."""
        for i, f in enumerate(self.frames):
            if f.function.endswith(("_run_once", "run_forever")) or f.file.endswith("asyncio/runners.py"):
                return i
        return None

    @property
    def runs_event_loop(self) -> bool:
        """True when an asyncio event loop is on this thread's stack."""
        return self.loop_at is not None

    @property
    def loop_waits_for_io(self) -> bool:
        """True when the loop is where a free loop is: waiting in select/poll for the next event (asyncio), or
        running none of its callbacks (a C loop waits below the Python frames)."""
        return bool(self.frames) and (self.frames[0].file.endswith("selectors.py") or self.loop_at == 0)

    @property
    def app_frame(self) -> Frame | None:
        """The innermost frame of the app's own code, if any: among the frames the loop (or the thread) runs, the
        innermost one from the app's files, else from an installed package outside the server (an app installed with
        pip). The command line and the server that started the loop are never it."""
        running = self.frames[: self.loop_at]
        return next((f for f in running if not f.is_library), None) or next(
            (f for f in running if f.is_installed_app), None
        )

    @property
    def free_line(self) -> str:
        """What a free loop is doing, as far as its Python frames tell: asyncio waits in select; a loop written in C
        (uvloop) shows no frame of its own, so between two callbacks it may wait for I/O or do its own work."""
        if self.frames and self.frames[0].file.endswith("selectors.py"):
            return "event loop free: waiting for I/O in select"
        return "event loop free: between callbacks, in its C loop (uvloop: waiting for I/O or in its own work)"

    def where(self) -> str:
        """The app's frame, and the call it is inside when that is deeper (a blocking client's socket read):
        `index (app.py:18) → HTTPResponse._read_status (http/client.py:286)`; the innermost frame without one."""
        app = self.app_frame
        if app is None:
            return str(self.frames[0])
        return str(app) if self.frames[0] == app else f"{app} → {self.frames[0]}"


def parse(text: str) -> list[Thread]:
    """The threads of one `py-spy dump` output."""
    threads: list[Thread] = []
    for line in text.splitlines():
        if m := _THREAD.match(line):
            threads.append(Thread(tid=m["tid"], name=m["name"] or "", active=m["state"].startswith("active")))
        elif (m := _FRAME.match(line)) and threads:
            threads[-1].frames.append(Frame(m["function"], m["file"], int(m["line"])))
    return threads


def summarize(threads: list[Thread]) -> list[str]:
    """What each thread is doing, in a few lines: the event loop first, then threads grouped by where they are."""
    lines: list[str] = []
    others: Counter[str] = Counter()
    for thread in threads:
        if not thread.frames:
            continue
        if thread.runs_event_loop:
            if thread.loop_waits_for_io:
                lines.append(thread.free_line)
            else:
                lines.append(f"event loop BUSY in {thread.where()} — nothing else runs on this worker until it returns")
            continue
        if thread.app_frame is not None:
            others[f"in {thread.where()}"] += 1
        else:
            others["idle (library code)"] += 1
    for place, count in others.most_common():
        lines.append(f"{count} other thread{'s' if count > 1 else ''} {place}")
    return lines


PY_SPY_ENV = "LOADTUI_PY_SPY"
"""Names the py-spy executable to use, when it is not the one installed with loadtui."""


def py_spy() -> str:
    """The py-spy executable: $LOADTUI_PY_SPY, else next to this Python (installed with loadtui), else on PATH."""
    if os.environ.get(PY_SPY_ENV):
        return os.environ[PY_SPY_ENV]
    beside = Path(sys.executable).parent / "py-spy"
    if beside.exists():
        return str(beside)
    found = shutil.which("py-spy")
    if found is None:
        raise StackDumpError("py-spy is not installed; pip install py-spy (it comes with loadtui)")
    return found


HOT_CPU = 50.0
"""% of one core: a worker this busy whose loop is caught in one function of the app runs that function hot (CPU
work), rather than waiting in it (a blocking call)."""


def sample(
    pid: int,
    samples: int = SAMPLES,
    gap: float = 0.05,
    cpu_percent: float | None = None,
    cancel: threading.Event | None = None,
) -> list[str]:
    """What `samples` dumps of `pid` show: the event loop's state first, saying how often it was seen, then the threads.

    One dump is one instant: a loop that serves many requests is caught in whatever it runs then (somewhere else
    each time), while a loop held by one call is caught in that call every time. The count tells the two apart;
    `cpu_percent` (the worker's, over the last second) tells a call that waits from one that computes.
    """
    dumps: list[list[Thread]] = []
    for i in range(samples):
        if i:
            time.sleep(gap)
        dumps.append(dump(pid, cancel=cancel))
    return judge(dumps, cpu_percent)


def judge(dumps: list[list[Thread]], cpu_percent: float | None = None) -> list[str]:
    """The lines of :func:`sample` from its dumps: held by one call, hot in one function, busy with many, or free;
    then the threads.

    Caught in the same app function in most samples, the loop is *held* when the thread waits there (py-spy shows it
    idle: a sleep, a socket read, a lock) or the worker's CPU is low, and *hot* when it runs there at high CPU.
    """
    n = len(dumps)
    loops = [next((t for t in threads if t.frames and t.runs_event_loop), None) for threads in dumps]
    busy = [(i, t) for i, t in enumerate(loops) if t is not None and not t.loop_waits_for_io]
    free = [i for i, t in enumerate(loops) if t is not None and t.loop_waits_for_io]
    held = Counter((f.function, f.file) for _, t in busy if (f := t.app_frame) is not None)
    if held and held.most_common(1)[0][1] * 2 > n:
        key, seen = held.most_common(1)[0]
        pick, frame = next(
            (i, t.where()) for i, t in busy if (f := t.app_frame) is not None and (f.function, f.file) == key
        )
        there = [t for _, t in busy if (f := t.app_frame) is not None and (f.function, f.file) == key]
        running = sum(t.active for t in there) * 2 > len(there)
        if running and (cpu_percent is None or cpu_percent >= HOT_CPU):
            cpu = f" at {cpu_percent:.0f}% CPU" if cpu_percent is not None else ""
            first = (
                f"event loop HOT in {frame} ({seen} of {n} samples, running{cpu}) — CPU work in the app's own "
                "code, not a blocking call: make it cheaper or cache it, move it to a process pool, or add workers"
            )
        else:
            first = (
                f"event loop BUSY in {frame} ({seen} of {n} samples) — held by one call: nothing else runs on this "
                "worker until it returns"
            )
    elif len(free) * 2 > n:
        pick = free[0]
        waiting = next(t for i, t in enumerate(loops) if i == pick and t is not None)
        first = f"{waiting.free_line} ({len(free)} of {n} samples)"
    elif busy:
        places = list(dict.fromkeys(t.where() for _, t in busy))
        pick = busy[0][0]
        first = (
            f"event loop busy but not stuck: caught in {len(places)} place(s) in {n} samples ({'; '.join(places)}) — "
            "many short steps, as when serving many requests; its CPU % says how busy"
        )
    else:
        return summarize(dumps[0]) if dumps else []
    return [first, *[line for line in summarize(dumps[pick]) if not line.startswith("event loop")]]


class Cancelled(StackDumpError):
    """The dump was given up (loadtui is quitting): not a failure of py-spy."""


def dump(pid: int, timeout: float = DUMP_TIMEOUT_S, cancel: threading.Event | None = None) -> list[Thread]:
    """The threads of process `pid` now; StackDumpError with a one-line reason when py-spy cannot read it, Cancelled
    as soon as `cancel` is set (py-spy is stopped)."""
    proc = subprocess.Popen(
        [py_spy(), "dump", "--full-filenames", "--pid", str(pid)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + timeout
    while True:
        try:
            out, err = proc.communicate(timeout=0.1)
            break
        except subprocess.TimeoutExpired:
            if (cancel is not None and cancel.is_set()) or time.monotonic() > deadline:
                proc.kill()
                proc.communicate()
                if cancel is not None and cancel.is_set():
                    raise Cancelled("the stack dump was cancelled") from None
                raise StackDumpError(f"py-spy took longer than {timeout:.0f} s on pid {pid}") from None
    if proc.returncode != 0:
        message = (err or out).strip()
        lowered = message.lower()
        if "permission" in lowered or "not permitted" in lowered or "ptrace" in lowered:
            raise StackDumpError(NO_PTRACE_HINT)
        first = message.splitlines()[0] if message else f"exit status {proc.returncode}"
        raise StackDumpError(f"py-spy could not read pid {pid}: {first}")
    return parse(out)


MAX_DUMPS = 4
"""Workers dumped per confirmation (the busiest first): each dump pauses its worker for a few milliseconds."""


def busiest(
    tick: Tick | None, most: int = MAX_DUMPS, cancel: threading.Event | None = None
) -> tuple[str, dict[str, list[str]]]:
    """What the busiest workers of this machine do now: one line for all, and each worker's verdict lines.

    Only this machine's workers: a remote row's pid names some other process here (and is the sender's word).
    Empty when there is none; raises StackDumpError when py-spy cannot read one.
    """
    workers = sorted((w for w in tick.workers if w.host is None), key=lambda w: -w.cpu_percent) if tick else []
    parts: list[str] = []
    per_worker: dict[str, list[str]] = {}
    for w in workers[:most]:
        lines = sample(w.pid, cpu_percent=w.cpu_percent, cancel=cancel)
        per_worker[str(w.pid)] = lines
        parts.append(f"worker {w.pid}: " + "; ".join(lines[:3]))
    return " | ".join(parts), per_worker
