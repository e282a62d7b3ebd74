"""Turning pydantic's validation errors into the one-line problems users read.

Each problem names the file, the key path and what is allowed:
`sweeps/x.toml: space.weight_decay[2]: must be >= 0, got -0.1`.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import ValidationError

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
_TYPE_WORDS = {
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "string_type": "a string",
    "list_type": "a list",
    "tuple_type": "a list",
    "dict_type": "a table",
    "model_type": "a table",
    "model_attributes_type": "a table",
}


def join_path(*parts: str | int) -> str:
    """`("space", "weight_decay", 2)` → `space.weight_decay[2]`."""
    path = ""
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part:
            if not _BARE_KEY.match(part):
                part = json.dumps(part)  # as TOML would quote it: one line, whatever it holds
            path += f".{part}" if path else part
    return path


def _show(value: Any) -> str:
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, (list, tuple)):
        return "a list"
    return repr(value)


def describe(error: dict[str, Any]) -> str:
    """One pydantic error as `must be …, got …`."""
    kind, ctx, got = error["type"], error.get("ctx") or {}, error.get("input")
    if kind in _TYPE_WORDS:
        return f"must be {_TYPE_WORDS[kind]}, got {_show(got)}"
    bounds = {
        "greater_than_equal": (">=", "ge"), "greater_than": (">", "gt"),
        "less_than_equal": ("<=", "le"), "less_than": ("<", "lt"),
    }
    if kind in bounds:
        sign, name = bounds[kind]
        return f"must be {sign} {ctx.get(name)}, got {_show(got)}"
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected')}, got {_show(got)}"
    if kind == "finite_number":
        return f"must be a finite number, got {_show(got)}"
    if kind == "missing":
        return "is required"
    if kind in ("value_error", "assertion_error"):
        return str(ctx.get("error", error["msg"]))
    if kind == "too_short":
        return f"needs at least {ctx.get('min_length')} values, got {ctx.get('actual_length')}"
    if kind == "too_long":
        return f"takes at most {ctx.get('max_length')} values, got {ctx.get('actual_length')}"
    return str(error["msg"])


def unknown_key(key: str, allowed: Iterable[str]) -> str:
    """`unknown key 'weight_decy' (did you mean 'weight_decay'?)`."""
    allowed = sorted(allowed)
    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    if close:
        return f"unknown key {key!r} (did you mean {close[0]!r}?)"
    return f"unknown key {key!r}; allowed: {', '.join(allowed)}"


def _is_branch_tag(part: str | int) -> bool:
    """Pydantic names union branches and wrapped validators in an error's location
    (`none`, `Schedule`, `function-after[…]`); a key path has no place for them."""
    return isinstance(part, str) and (
        part in ("none", "Schedule", "str", "list[...]") or part.startswith("function-")
    )


def from_validation_error(
    error: ValidationError, prefix: Sequence[str | int], allowed: Iterable[str] = ()
) -> list[tuple[str, str]]:
    """`(key path, message)` pairs for every error, under `prefix`.

    Union branches (`Schedule | None`) produce one error per branch; only the first
    per path is kept, since the others say the same thing less clearly.
    """
    problems: dict[str, str] = {}
    allowed = list(allowed)
    for item in error.errors(include_url=False):
        # The last part is the user's own key (even one named `none`), never a tag.
        *parents, last = item["loc"] or ("",)
        loc = [part for part in parents if not _is_branch_tag(part)] + [last]
        if item["type"] == "missing" and loc and isinstance(loc[-1], int):
            # A fixed-length list (image_shape) with too few values.
            problems.setdefault(join_path(*prefix, *loc[:-1]), f"too few values: needs at least {loc[-1] + 1}")
            continue
        if item["type"] == "extra_forbidden":
            key = str(loc[-1])
            message = unknown_key(key, allowed if len(loc) == 1 else ())
        else:
            message = describe(item)
        path = join_path(*prefix, *loc)
        problems.setdefault(path, message)
    return list(problems.items())
