"""How the commands' rich output meets the terminal: plain where colour is unwanted.

rich drops colour under `NO_COLOR` but keeps bold and italics, and those are what
https://no-color.org users and screen readers asked to lose too. Output that is not a
terminal (a pipe, a file) is plain already: rich emits no escape codes there.
"""

from __future__ import annotations

import os
from typing import Any

from rich.console import Console


def plain_wanted() -> bool:
    """Whether `NO_COLOR` asks for output without colour or styles (any non-empty value)."""
    return os.environ.get("NO_COLOR", "") != ""


def console(**options: Any) -> Console:
    """A rich Console for a command's output: no colour, bold or italics under `NO_COLOR`.

    Args:
        options: rich `Console` options (file, width, …).
    """
    if plain_wanted():
        options.setdefault("color_system", None)
    return Console(**options)
