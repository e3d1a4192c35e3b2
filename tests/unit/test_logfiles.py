"""The children's logs: read from the end, cut down to their tail once too big."""

from __future__ import annotations

from pathlib import Path

from loadtui.procs import logfiles


def test_the_last_lines_are_read_from_the_end_of_a_big_log(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_bytes(b"x" * (3 * logfiles.TAIL_BYTES) + b"\nfirst\n\n  \nsecond\nlast words\n")
    assert logfiles.tail(log, 2) == ["second", "last words"]
    assert logfiles.tail(tmp_path / "missing.log") == []


def test_a_log_past_its_cap_keeps_its_tail_and_goes_on(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_bytes(b"old line\n" * 2000 + b"recent line\n")
    assert not logfiles.cap(log, max_bytes=10**6, keep_bytes=100)  # under the cap: untouched
    assert logfiles.cap(log, max_bytes=1000, keep_bytes=100)
    text = log.read_text()
    assert text.startswith("--- loadtui: earlier lines cut") and text.endswith("recent line\n")
    assert len(text) < 200
    with open(log, "ab") as f:  # the child appends at the new end
        f.write(b"after\n")
    assert logfiles.tail(log, 1) == ["after"]
