"""The report as a reader gets it, compared with a reviewed copy: every table, fact, verdict and SLO line of six
kinds of report (two runs compared, a sweep with SLOs, a run by arrival rate cut off by a kill, a sweep that never
ended, a log without a second, three runs), and each plot's traces and layout.

A change to the report's words or plots fails here until the copy is written again and the difference reviewed:
`python -c "from tests.unit.test_report_golden import write_golden; write_golden()"`. The page's own plotly
output (its div ids, the plotly.js it embeds) is left out: plotly's, not ours; the browser test loads it for real.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from loadtui.config import RunConfig
from loadtui.model import Event, Latency, OpenLoad
from loadtui.results import report
from loadtui.results.recorder import Recorder, SessionLog, read_log
from loadtui.results.segments import summarize
from tests.helpers import tick, write_session_log

GOLDEN = Path(__file__).parent / "golden" / "report.json"
MACHINE = {"cpu_count": 2, "memory_bytes": 8 * 2**30, "platform": "Linux-test", "python": "3.11.0"}
VERSIONS = {"loadtui": "0", "locust": "0", "uvicorn": "0"}


def _fixed(log: SessionLog, **summary: Any) -> SessionLog:
    """The log with a machine and versions of the test's choosing (the header records the real ones)."""
    header = {**log.header, "machine": MACHINE, "versions": VERSIONS}
    merged = {**(log.summary or {}), **summary} if summary or log.summary else None
    return dataclasses.replace(log, header=header, summary=merged)


def _open_log(path: Path) -> SessionLog:
    rec = Recorder(path)
    rec.header(RunConfig(rate=120.0, arrivals="poisson", workers=2), dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC))
    for i in range(8):
        served = OpenLoad(120.0, 110.0 + i, 120.0, float(i % 2), 4 + i, Latency(p50=4.0, p95=9.0 + i, p99=12.0))
        rec.tick(dataclasses.replace(tick(float(i + 1), rps=110.0 + i, p95=20.0 + i, users=0), open=served))
    rec.close()
    return dataclasses.replace(_fixed(read_log(path)), truncated=True)


def _sweep_log(path: Path) -> SessionLog:
    log = read_log(write_session_log(path, segments=2, seconds=10))
    one = summarize(0, [tick(float(i), rps=100.0, p95=40.0) for i in range(5)], None, settle=0)
    two = summarize(1, [tick(float(i), rps=190.0, p95=45.0) for i in range(5)], None, settle=0)
    plan = [
        {"changes": {"workers": 1}, "segment": dataclasses.asdict(one), "note": ""},
        {"changes": {"workers": 2}, "segment": dataclasses.asdict(two), "note": "skipped after 3 s"},
        {"changes": {"workers": 3}, "segment": dataclasses.asdict(two), "note": "failed: the app did not start"},
    ]
    verdict = {"segment": 1, "config": {"workers": 2}, "why": "2 workers: 190 req/s", "slos": ["p95 < 50 ms"]}
    checks = [
        {"slo": "p95 < 50 ms", "segment": 0, "value": 30.0, "met": True},
        {"slo": "p95 < 50 ms", "segment": 1, "value": 62.5, "met": False},
        {"slo": "rps > 5000", "segment": -1, "value": None, "met": False},
    ]
    consequence = Event(6.0, "finding-started", "The pool is exhausted", {"id": "pool-exhausted",
                        "evidence": "17 waiting", "consequence_of": "too-few-workers"})  # fmt: skip
    swept = dataclasses.replace(log, events=[*log.events, consequence])
    return _fixed(swept, plan=plan, verdict=verdict, slo_checks=checks)


def _compared(folder: Path) -> list[SessionLog]:
    base = _fixed(read_log(write_session_log(folder / "base.jsonl", segments=1, seconds=25)))
    slower = dataclasses.replace(
        _fixed(read_log(write_session_log(folder / "new.jsonl", segments=1, seconds=25))),
        ticks=[dataclasses.replace(t, rps=t.rps * 0.7, latency=Latency(10.0, 40.0, 60.0)) for t in base.ticks],
    )
    return [base, slower]


def _unfinished(path: Path) -> SessionLog:
    """A sweep that never ended, its SLOs all met, from a log that says little of its machine and settings."""
    log = read_log(write_session_log(path, segments=1, seconds=6))
    config = {k: v for k, v in log.header["config"].items() if k not in ("users", "arrivals")}
    header = {k: v for k, v in log.header.items() if k != "started_at"}
    plan = [{"changes": {"pool_max": 5}, "segment": dataclasses.asdict(summarize(0, log.ticks, None)), "note": ""}]
    checks = [{"slo": "p95 < 50 ms", "segment": 0, "value": 30.0, "met": True}]
    return dataclasses.replace(log, header={**header, "config": config, "machine": {}, "versions": {}},
                               summary={"plan": plan, "slo_checks": checks})  # fmt: skip


def _empty(path: Path) -> SessionLog:
    """A log whose session never measured a second, by arrival rate without its arrivals recorded."""
    log = _fixed(read_log(write_session_log(path, segments=1, seconds=1)))
    config = {k: v for k, v in log.header["config"].items() if k != "arrivals"}
    return dataclasses.replace(log, header={**log.header, "config": {**config, "rate": 10.0}}, ticks=[], events=[])


def _short(value: Any) -> Any:
    """A figure's JSON with long series cut to their ends (the series come from plots.py, tested on their own)."""
    if isinstance(value, list) and len(value) > 6:
        return {"len": len(value), "head": _short(value[:3]), "tail": _short(value[-3:])}
    if isinstance(value, list):
        return [_short(v) for v in value]
    if isinstance(value, dict):
        return {k: _short(v) for k, v in value.items() if k != "template"}
    if isinstance(value, float):
        return round(value, 6)
    return value


@contextmanager
def _figures_recorded() -> Iterator[list[Any]]:
    """Each figure the report draws, as JSON, in order; the page gets a placeholder instead of plotly's output."""
    seen: list[Any] = []
    original = report._figure_html

    def record(fig: Any, embed_js: bool) -> str:
        seen.append({"embed_js": embed_js, **_short(json.loads(fig.to_json()))})
        return "[plot]"

    report._figure_html = record
    try:
        yield seen
    finally:
        report._figure_html = original


def _reports() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "sweep").mkdir()
        (folder / "three").mkdir()
        cases = {
            "compared": _compared(folder),
            "sweep": [_sweep_log(folder / "sweep" / "run.jsonl")],
            "open": [_open_log(folder / "open.jsonl")],
            "unfinished": [_unfinished(folder / "unfinished.jsonl")],
            "empty": [_empty(folder / "empty.jsonl")],
            "three": [_fixed(read_log(write_session_log(folder / "three" / f"{n}.jsonl", segments=1, seconds=6)))
                      for n in ("a", "b", "c")],
        }  # fmt: skip
        out: dict[str, Any] = {}
        for name, logs in cases.items():
            with _figures_recorded() as figures:
                page = report.render(logs)
            page = re.sub(r"generated \d{4}-\d\d-\d\dT[0-9:]+\+00:00", "generated <time>", page)
            out[name] = {"page": page.replace(tmp, "<tmp>").splitlines(), "figures": figures}
        return out


def test_each_report_reads_as_reviewed() -> None:
    expected = json.loads(GOLDEN.read_text(encoding="utf-8"))
    actual = json.loads(json.dumps(_reports(), ensure_ascii=False))
    for name in expected:
        assert actual[name]["page"] == expected[name]["page"], f"the {name} report's page changed"
        for i, (got, want) in enumerate(zip(actual[name]["figures"], expected[name]["figures"], strict=True)):
            assert got == want, f"the {name} report's plot {i + 1} changed"
    assert actual.keys() == expected.keys()


def write_golden() -> None:
    """Write the reviewed copy again (then read its diff before committing it)."""
    GOLDEN.write_text(json.dumps(_reports(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
