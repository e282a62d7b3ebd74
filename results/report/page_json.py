"""Data for a page's `<script>` element: strict JSON that cannot end the element.

JSON has no NaN or infinity (a diverged run has both), so they become `null`, which
plotly draws as a gap. Inside `<script>` the HTML parser ends the element at the first
`</script` and changes state at `<!--`, whatever the JavaScript around them; so every
`<`, `>` and `&` is written as a `\\u` escape, which JSON reads back as the same text.
The line separators U+2028/U+2029 are escaped too: older JavaScript parsers end a
string at them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

import numpy as np

_SCRIPT_UNSAFE = str.maketrans(
    {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
)


def plain(value: Any) -> Any:
    """A value as JSON-ready Python: NaN, infinities and pandas' NA become None, numpy
    scalars and arrays Python numbers and lists, datetimes ISO 8601 text."""
    if value is None or isinstance(value, (str, bool)):
        return value
    if isinstance(value, Mapping):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    if isinstance(value, np.ndarray):
        return [plain(item) for item in value.tolist()]
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    try:
        import pandas as pd

        if pd.isna(value):
            return None
    except (TypeError, ValueError):  # not a scalar pandas knows
        pass
    raise TypeError(f"cannot write {type(value).__name__} {value!r} as JSON")


def script_json(value: Any) -> str:
    """`value` as JSON text safe inside a `<script type="application/json">` element.

    Raises:
        TypeError: a value with no JSON form.
    """
    return json.dumps(plain(value), ensure_ascii=False, allow_nan=False, separators=(",", ":")).translate(
        _SCRIPT_UNSAFE
    )


def script_code(code: str) -> str:
    """JavaScript source safe inside a `<script>` element.

    `</script` can only occur in JavaScript inside a string, a regular expression or a
    comment, where `<\\/script` means the same.
    """
    out = []
    lower = code.lower()
    start = 0
    while (found := lower.find("</script", start)) != -1:
        out.append(code[start:found] + "<\\/")
        start = found + 2
    out.append(code[start:])
    return "".join(out)
