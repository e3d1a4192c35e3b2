"""The dashboard's modal screens: help, the findings in full, the scenario picker, and the note for a mark."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Input, Markdown, OptionList, Static
from textual.widgets.option_list import Option

from loadtui.config import SCENARIOS
from loadtui.model import Finding, named_by
from loadtui.tui.keys import help_text


class HelpScreen(ModalScreen[None]):
    """The keys of the current mode, and what the numbers mean."""

    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box"):
            yield Markdown(help_text(self.app))


class FindingsScreen(ModalScreen[None]):
    """Every active finding in full — title, evidence, advice, stack sample — however narrow the dashboard is."""

    BINDINGS = [Binding("escape,q,f", "dismiss", "close")]

    def __init__(self, findings: Sequence[Finding]) -> None:
        super().__init__()
        self.findings = list(findings)

    def compose(self) -> ComposeResult:
        text = Text()
        if not self.findings:
            text.append("No finding is active.")
        for f in self.findings:
            style = {"critical": "bold red", "warning": "bold yellow"}.get(f.severity, "bold")
            text.append(f"{f.severity.upper()}  {f.title}\n", style=style)
            text.append(f"{f.evidence}\n")
            if f.signals:
                text.append(named_by(f.signals) + "\n", style="dim")
            if f.advice:
                text.append(f"→ {f.advice}\n", style="italic")
            if f.confirmation:
                text.append(f"stack sample: {f.confirmation}\n", style="dim")
            text.append("\n")
        with VerticalScroll(id="findings-box"):
            yield Static("Findings in full (escape to close)", classes="box-title")
            yield Static(text, id="findings-text")


class ScenarioScreen(ModalScreen[str | None]):
    """Pick a scenario; each comes with what it teaches."""

    BINDINGS = [Binding("escape", "dismiss(None)", "cancel")]

    def __init__(self, current: str | None = None) -> None:
        super().__init__()
        self.current = current
        """The scenario running now: the list opens on it."""

    def compose(self) -> ComposeResult:
        options = [Option(Text.assemble((s.name, "bold"), "  ", (s.lesson, "dim")), id=s.name) for s in SCENARIOS]
        with Vertical(id="scenario-box"):
            yield Static("Choose a scenario (enter), escape to cancel", classes="box-title")
            yield OptionList(*options, id="scenario-list")

    def on_mount(self) -> None:
        names = [s.name for s in SCENARIOS]
        if self.current in names:
            self.query_one(OptionList).highlighted = names.index(self.current)

    @on(OptionList.OptionSelected)
    def chosen(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)


class MarkScreen(ModalScreen[str | None]):
    """Type a note for the mark."""

    BINDINGS = [Binding("escape", "dismiss(None)", "cancel")]

    def compose(self) -> ComposeResult:
        with Vertical(id="mark-box"):
            yield Static("Note for this moment (enter to save, escape to cancel)", classes="box-title")
            yield Input(placeholder="e.g. before adding workers", id="mark-input")

    @on(Input.Submitted)
    def submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value)
