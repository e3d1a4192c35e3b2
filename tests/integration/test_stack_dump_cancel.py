"""A py-spy dump under way gives up as soon as loadtui quits, instead of holding the quit for its timeout."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from loadtui.measure import stacks


def test_a_dump_is_cancelled_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stuck = tmp_path / "py-spy"
    stuck.write_text("#!/bin/sh\nexec sleep 60\n")  # a py-spy that never answers (a process it cannot stop)
    stuck.chmod(0o755)
    monkeypatch.setenv(stacks.PY_SPY_ENV, str(stuck))
    cancel = threading.Event()
    threading.Timer(0.3, cancel.set).start()
    started = time.monotonic()
    with pytest.raises(stacks.Cancelled):
        stacks.sample(os.getpid(), cancel=cancel)
    assert time.monotonic() - started < 2.0  # not the dump's timeout


def test_a_dump_that_outlives_its_timeout_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stuck = tmp_path / "py-spy"
    stuck.write_text("#!/bin/sh\nexec sleep 60\n")
    stuck.chmod(0o755)
    monkeypatch.setenv(stacks.PY_SPY_ENV, str(stuck))
    with pytest.raises(stacks.StackDumpError, match="took longer than") as caught:
        stacks.dump(os.getpid(), timeout=0.3)
    assert not isinstance(caught.value, stacks.Cancelled)
