"""Study names: each names a folder, `<checkpoints>/<study>/`, so it must stay one.

`../../x`, `/etc` or a name with a slash would put a study's checkpoints and logs
outside `--checkpoints`; a name is therefore a single, plain path component.
"""

from __future__ import annotations

import re

MAX_NAME = 100
_NAME = re.compile(rf"[A-Za-z0-9][A-Za-z0-9_.-]{{0,{MAX_NAME - 1}}}")
ALLOWED = (
    f"1 to {MAX_NAME} letters, digits, '_', '-' or '.', beginning with a letter or digit "
    "(it names the folder <checkpoints>/<study>/)"
)


def name_problem(name: str) -> str | None:
    """What is wrong with a study name, or None when it is a valid one."""
    if isinstance(name, str) and _NAME.fullmatch(name):
        return None
    return f"must be {ALLOWED}, got {name!r}"


__all__ = ["ALLOWED", "MAX_NAME", "name_problem"]
