"""Messages the dashboard receives: data comes up as messages, never by touching a widget from a thread.

A Tick is carried by :class:`TickArrived`, which replaces one still queued, so the screen never falls behind.
"""

from __future__ import annotations

from textual.message import Message

from loadtui.model import Event, Tick


class TickArrived(Message):
    """A new second to render. A newer one replaces one still queued: the screen never falls behind."""

    def __init__(self, tick: Tick) -> None:
        super().__init__()
        self.tick = tick

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, TickArrived)


class EventArrived(Message):
    """Something happened in the session."""

    def __init__(self, event: Event) -> None:
        super().__init__()
        self.event = event


class JobFinished(Message):
    """A control job (open, apply, workers...) finished on the control thread."""

    def __init__(self, name: str, ok: bool, message: str, usage_error: bool = False) -> None:
        super().__init__()
        self.name = name
        self.ok = ok
        self.message = message
        self.usage_error = usage_error
        """True when the failure is bad input (exit status 2)."""


class Progress(Message):
    """A step of a long operation (start-up, restart)."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text
