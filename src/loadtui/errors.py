"""Errors that end a command with one clear line and exit status 2 (bad input) or 1 (the run failed)."""

from __future__ import annotations


class UsageError(Exception):
    """Bad input: the message names the problem and the fix; the command exits with status 2, no traceback."""


class RunFailed(Exception):
    """The run itself failed (app never ready, load generator died): exit status 1."""
