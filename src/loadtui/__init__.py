"""loadtui: find out why a Python web app is slow under load while its CPU is idle.

This package is imported by every process loadtui starts (the exec launcher, the load generator child, the sample
app's workers through :mod:`loadtui.appstats`), so it must stay free of heavy imports.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("loadtui")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"

__all__ = ["__version__"]
