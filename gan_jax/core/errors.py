"""Errors a user can cause, and the small checks that word them: the package's leaf module.

Every check of user input raises :class:`ConfigError` with a message of the form
`FIELD: got VALUE; RULE`, so the command line can print it as one line and exit with status 2.
This module imports nothing of the package, so any module may use it.
"""

from __future__ import annotations

import difflib
import math
from typing import Any, Iterable

import numpy as np


class ConfigError(ValueError):
    """A value is not allowed; the message names the field, the value and the rule."""


def field_error(field: str, value: Any, allowed: str) -> ConfigError:
    """`FIELD: got VALUE; ALLOWED` as a ConfigError."""
    return ConfigError(f"{field}: got {value!r}; {allowed}")


def suggest(name: str, options: Iterable[str]) -> str:
    """' (did you mean 'x'?)' for the closest option, or ''."""
    close = difflib.get_close_matches(str(name), list(options), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def is_int(value: Any) -> bool:
    """An integer, not a bool (True is an int in Python, never a count here)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """An int or a float (NumPy's too), not a bool."""
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def is_finite_number(value: Any) -> bool:
    return is_number(value) and math.isfinite(value)


class OutputError(ConfigError):
    """A file could not be written (a full disk, a read-only directory): the message names the
    file and the error, and says what was left behind. The command line exits with status 1."""
