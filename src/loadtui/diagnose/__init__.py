"""Diagnosis: name the bottleneck, with the numbers that prove it.

Pure functions over the recent Ticks and the RunConfig (no Textual, no I/O), one job a module:

- ``thresholds`` — every number the rules use, each a documented field of :class:`Thresholds`;
- ``window`` — the seconds a rule looks at, and what Little's law derives from them;
- ``machine``, ``loop``, ``database``, ``app`` — the rules, each returning a :class:`~loadtui.model.Finding` or None;
- ``relations`` — which finding follows from which (one typed table) and the order they are shown in;
- ``diagnoser`` — every rule once a second, and :class:`Diagnoser`: hysteresis, causes with their consequences,
  nothing new judged while a fault lasts.

A new rule goes in the module of what it looks at, into ``RULES`` (diagnoser.py) and ``ORDER`` (relations.py), and
into ``RELATIONS`` if it follows from another. The README explains each rule.
"""

from loadtui.diagnose.diagnoser import FAULT_HOLD_S, RULES, Diagnoser, evaluate, findings
from loadtui.diagnose.relations import CONSEQUENCE, ORDER, RANK, RELATIONS, Relation, cause_text, order, relate
from loadtui.diagnose.thresholds import DB_LIMIT_MESSAGES, THRESHOLDS, Thresholds
from loadtui.diagnose.window import Window, capacity

__all__ = [
    "CONSEQUENCE",
    "DB_LIMIT_MESSAGES",
    "FAULT_HOLD_S",
    "ORDER",
    "RANK",
    "RELATIONS",
    "RULES",
    "THRESHOLDS",
    "Diagnoser",
    "Relation",
    "Thresholds",
    "Window",
    "capacity",
    "cause_text",
    "evaluate",
    "findings",
    "order",
    "relate",
]
