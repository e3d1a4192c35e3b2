"""Replay without a terminal: which recorded second to show next, at what speed, and what was in force then.

The dashboard asks a :class:`ReplayPlayer` what to render; the player never imports Textual, so its stepping,
seeking and speed are unit-tested like the rest of the core.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from textual.message import Message

from loadtui.config import RunConfig
from loadtui.model import Event
from loadtui.results.recorder import SessionLog
from loadtui.tui.messages import EventArrived, TickArrived

MIN_SPEED = 0.25
MAX_SPEED = 64.0
"""Events that carry the configuration in force from then on."""


@dataclass
class ReplayPlayer:
    """A position in a recorded session: the next second to show, playing or paused, and the speed."""

    log: SessionLog
    speed: float = 1.0
    index: int = 0
    """The next second to show while playing; after a step or a seek, the second shown."""
    playing: bool = True
    _clock: float = field(default=0.0, repr=False)

    @property
    def total(self) -> int:
        """Recorded seconds."""
        return len(self.log.ticks)

    @property
    def at_end(self) -> bool:
        """True when every second has been shown."""
        return self.index >= self.total

    def advance(self, seconds: float) -> list[int]:
        """Let `seconds` of wall time pass: the indexes of the seconds to show now, in order (none when paused)."""
        if not self.playing or self.at_end:
            return []
        self._clock += seconds * self.speed
        due: list[int] = []
        while self.index < self.total and self._clock >= 1.0:
            self._clock -= 1.0
            due.append(self.index)
            self.index += 1
        return due

    def toggle(self) -> None:
        """Play or pause."""
        self.playing = not self.playing

    def step(self, delta: int) -> int | None:
        """Pause and move `delta` seconds; the index to show (None for an empty log)."""
        if not self.total:
            return None
        self.playing = False
        self.index = max(0, min(self.total - 1, self.index + delta))
        return self.index

    def seek(self, where: int) -> int | None:
        """Jump to the first second (0) or the last (-1); the index to show."""
        if not self.total:
            return None
        self.index = 0 if where == 0 else self.total - 1
        return self.index

    def scale(self, factor: float) -> None:
        """Play faster (factor > 1) or slower, within 0.25× and 64×."""
        self.speed = max(MIN_SPEED, min(MAX_SPEED, self.speed * factor))

    def events_for(self, index: int) -> list[Event]:
        """The events recorded after the previous second and up to this one."""
        ticks = self.log.ticks
        previous_t = ticks[index - 1].t if index > 0 else float("-inf")
        return [ev for ev in self.log.events if previous_t < ev.t <= ticks[index].t]

    def config_at(self, index: int) -> RunConfig:
        """The configuration in force at this second: the last one recorded at or before it (wherever we jumped from)."""
        t = self.log.ticks[index].t
        config = self.log.config
        for ev in self.log.events:
            if ev.t > t:
                break
            if isinstance(ev.data.get("segment"), int) and isinstance(ev.data.get("config"), dict):
                config = RunConfig.from_dict(ev.data["config"])
        return config


REPLAY_FRAME_S = 0.05
"""How often a replay advances its clock."""


class ReplayControls:
    """The replay's keys and frames, mixed into the dashboard (a replay shows recorded seconds as live ones)."""

    replay: ReplayPlayer | None
    applied: RunConfig

    if TYPE_CHECKING:  # provided by the App it is mixed into (never defined here: they would shadow the App's)

        def post_message(self, message: Message) -> bool: ...
        def _render_config(self) -> None: ...
        def _render_status(self) -> None: ...

    def _replay_frame(self) -> None:
        if self.replay is not None:
            for index in self.replay.advance(REPLAY_FRAME_S):
                self._show_recorded(index)

    def _show_recorded(self, index: int) -> None:
        """Render a recorded second with its events and the configuration in force at that moment."""
        assert self.replay is not None
        for ev in self.replay.events_for(index):
            self.post_message(EventArrived(ev))
        self.applied = self.replay.config_at(index)
        self._render_config()
        self.post_message(TickArrived(self.replay.log.ticks[index]))

    def action_step(self, delta: int) -> None:
        """Replay: one second forward or back (pauses)."""
        if self.replay is not None and (index := self.replay.step(delta)) is not None:
            self._show_recorded(index)
            self._render_status()

    def action_speed(self, factor: float) -> None:
        """Replay: faster or slower."""
        if self.replay is not None:
            self.replay.scale(factor)
            self._render_status()

    def action_seek(self, where: int) -> None:
        """Replay: jump to the start or the end."""
        if self.replay is not None and (index := self.replay.seek(where)) is not None:
            self._show_recorded(index)
            self._render_status()
