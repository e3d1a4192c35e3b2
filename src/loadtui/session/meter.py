"""One second at a time: the load generator's record in, a diagnosed :class:`Tick` out.

The records arrive on a queue from the load generator's reader thread; :meth:`Meter.next_record` takes the newest
(never falling behind after a slow second), :meth:`Meter.second` measures everything else through the TickBuilder,
lets the watch see the children, and runs the diagnosis; :meth:`Meter.confirm` dumps the busiest workers with py-spy
and attaches what they show to the findings that are active.
"""

from __future__ import annotations

import dataclasses
import queue
import threading
from collections.abc import Callable
from typing import Any

from loadtui.config import RunConfig
from loadtui.diagnose import Diagnoser
from loadtui.errors import RunFailed
from loadtui.measure import stacks
from loadtui.measure.ticks import TickBuilder
from loadtui.model import Tick
from loadtui.session.watch import Watchman

TICK_TIMEOUT = 1.2
"""Without a load-generator record for this long (paused, restarting), a tick is built without load figures."""


class Meter:
    """Measures and diagnoses the seconds of one session."""

    def __init__(
        self,
        *,
        builder: TickBuilder,
        watch: Watchman,
        diagnoser: Diagnoser,
        event: Callable[..., object],
        cancel: threading.Event,
    ) -> None:
        self._builder = builder
        self._watch = watch
        self._diagnoser = diagnoser
        self._event = event
        self._cancel = cancel
        self.records: queue.Queue[dict[str, Any]] = queue.Queue()
        """The load generator's per-second records, as its reader thread parses them."""
        self._confirmations: dict[str, str] = {}

    def next_record(self) -> dict[str, Any] | None:
        """The newest record of the next second (None after :data:`TICK_TIMEOUT` without one)."""
        try:
            record: dict[str, Any] | None = self.records.get(timeout=TICK_TIMEOUT)
        except queue.Empty:
            return None
        while not self.records.empty():  # records piled up (a slow second): use the newest
            try:
                record = self.records.get_nowait()
            except queue.Empty:
                break
        return record

    def second(self, t: float, record: dict[str, Any] | None, config: RunConfig) -> Tick:
        """This second's Tick: measured by the builder, watched for crashes, diagnosed."""
        tick = self._builder.measure(round(t, 3), record)
        self._watch.second(tick, record, config)
        active, started, ended = self._diagnoser.update(tick, config)
        for f in started:
            self._event("finding-started", f.title, id=f.id, severity=f.severity, evidence=f.evidence,
                        signals=f.signals, advice=f.advice, consequence_of=f.consequence_of)  # fmt: skip
        for fid in ended:
            self._event("finding-ended", f"{fid} ended", id=fid)
            self._confirmations.pop(fid, None)
        active = [
            dataclasses.replace(f, confirmation=self._confirmations[f.id]) if f.id in self._confirmations else f
            for f in active
        ]
        return dataclasses.replace(tick, findings=active)

    def confirm(self, tick: Tick | None) -> str:
        """Confirm the active findings with a py-spy dump of the busiest workers; attach, record and return it.

        Raises RunFailed with a one-line reason when py-spy cannot read the workers (no ptrace permission...).
        """
        findings = [f.id for f in tick.findings] if tick else []
        try:
            text, per_worker = stacks.busiest(tick, cancel=self._cancel)
        except stacks.Cancelled as exc:
            raise RunFailed(str(exc)) from None  # loadtui is quitting: nothing to say about py-spy
        except stacks.StackDumpError as exc:
            self._event("confirmation-failed", str(exc), findings=findings)
            raise RunFailed(str(exc)) from None
        if not per_worker:
            raise RunFailed("no app workers to dump (the app is not running, or loadtui does not run it)")
        for fid in findings:
            self._confirmations[fid] = text
        self._event("confirmation", f"py-spy: {text}", findings=findings, workers=per_worker)
        return text
