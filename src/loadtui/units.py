"""How figures read: one formatter per unit, shared by the dashboard, headless lines, findings and reports.

A missing figure (no request finished, no helper) reads "—" everywhere, never 0.
"""

from __future__ import annotations

MISSING = "—"


def ms(value: float | None) -> str:
    """Milliseconds with their unit: "1,250 ms"."""
    return MISSING if value is None else f"{value:,.0f} ms"


def num(value: float | None, spec: str = ".0f") -> str:
    """A bare number for a column whose header names the unit."""
    return MISSING if value is None else format(value, spec)


def mib(value: int) -> str:
    """Bytes as MiB."""
    return f"{value / 2**20:,.0f} MiB"
