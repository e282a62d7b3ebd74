"""Turning pydantic's validation errors into the one-line problems users read.

Each problem names the file, the key path and what is allowed:
`sweeps/x.toml: space.weight_decay[2]: must be >= 0, got -0.1`.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

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
    if not allowed:
        return f"unknown key {key!r}: this table takes no other keys"
    return f"unknown key {key!r}; allowed: {', '.join(allowed)}"


def _unwrap(kind: Any) -> Any:
    """The type itself, without `Annotated[…]` and without a union's `None`."""
    while True:
        if get_origin(kind) is Annotated:
            kind = get_args(kind)[0]
            continue
        if get_origin(kind) in (Union, UnionType):
            branches = [a for a in get_args(kind) if a is not type(None)]
            if len(branches) == 1:
                kind = branches[0]
                continue
        return kind


def _step(kind: Any, part: str | int) -> tuple[bool, Any]:
    """Whether `part` of an error's location is a key or an index of a value of type
    `kind`, and the type of what it names. A part that is neither is pydantic's name
    for a union's branch or a wrapped validator: it names the same value."""
    kind = _unwrap(kind)
    if kind is Any:
        return True, Any
    if get_origin(kind) in (Union, UnionType):
        for branch in get_args(kind):
            keep, inner = _step(branch, part)
            if keep:
                return True, inner
        return False, kind
    if isinstance(kind, type) and issubclass(kind, BaseModel):
        field = kind.model_fields.get(part) if isinstance(part, str) else None
        return (True, field.annotation) if field else (False, kind)
    origin, args = get_origin(kind), get_args(kind)
    if origin in (list, tuple, set, frozenset, Sequence) and isinstance(part, int):
        if origin is tuple and args and args[-1] is not Ellipsis:
            return True, args[part] if part < len(args) else Any
        return True, args[0] if args else Any
    if origin in (dict, Mapping) and isinstance(part, str):
        return True, args[1] if len(args) == 2 else Any
    return False, kind


def key_path(model: type[BaseModel], loc: Sequence[str | int], unknown: bool = False) -> list[str | int]:
    """The keys and indices of a pydantic error's location, found by walking `model`'s
    fields along it.

    Args:
        model: the model that was validated.
        loc: the error's `loc`.
        unknown: the error is an unknown key: the last part is the user's own key,
            kept even where the model has no such field (even one named `none`).
    """
    path: list[str | int] = []
    kind: Any = model
    for i, part in enumerate(loc):
        keep, kind = _step(kind, part)
        if keep or (unknown and i == len(loc) - 1):
            path.append(part)
    return path


def _fields_at(model: type[BaseModel], loc: Sequence[str | int]) -> list[str]:
    """The keys allowed in the table at `loc` (a nested model's fields, such as a
    schedule's `breakpoints` and `relative`); empty when that is no model."""
    kind: Any = model
    for part in loc:
        _, kind = _step(kind, part)
    for branch in get_args(_unwrap(kind)) or (_unwrap(kind),):
        branch = _unwrap(branch)
        if isinstance(branch, type) and issubclass(branch, BaseModel):
            return list(branch.model_fields)
    return []


def from_validation_error(
    error: ValidationError, model: type[BaseModel], prefix: Sequence[str | int], allowed: Iterable[str] = ()
) -> list[tuple[str, str]]:
    """`(key path, message)` pairs for every error, under `prefix`.

    Union branches (`Schedule | str`) produce one error per branch; only the first
    per path is kept, since the others say the same thing less clearly.

    Args:
        error: what pydantic raised.
        model: the model it validated: error locations are read along its fields.
        prefix: the key path of the model's table in the file.
        allowed: the table's keys, suggested for an unknown one.
    """
    problems: dict[str, str] = {}
    allowed = list(allowed)
    for item in error.errors(include_url=False):
        loc = key_path(model, item["loc"], unknown=item["type"] == "extra_forbidden")
        if item["type"] == "missing" and loc and isinstance(loc[-1], int):
            # A fixed-length list (image_shape) with too few values.
            problems.setdefault(join_path(*prefix, *loc[:-1]), f"too few values: needs at least {loc[-1] + 1}")
            continue
        if item["type"] == "extra_forbidden":
            key = str(loc[-1])
            message = unknown_key(key, allowed if len(loc) == 1 else _fields_at(model, item["loc"][:-1]))
        else:
            message = describe(item)
        path = join_path(*prefix, *loc)
        problems.setdefault(path, message)
    return list(problems.items())
