"""Errors a user can fix. Anything else is a bug and keeps its traceback.

* ReportingError          -- base; the CLI prints "Error: <message>" and exits 1
  x ConfigError           -- the config file is wrong (names the file and the key)
  x InputError            -- an input cannot be read at all (names the file)

Bad *rows* are never exceptions: they go to quarantine with a reason.
"""

from __future__ import annotations


class ReportingError(Exception):
    """A problem the user can fix; the message says what, where and what to do."""


class ConfigError(ReportingError):
    """The configuration file is invalid."""


class InputError(ReportingError):
    """An input file or folder cannot be read."""
