"""The post's run labels in the post's order: 0, 1, 2, 3A, 3B, 4, …, 10, 11.

Natural order: the leading number, then the suffix; labels without a leading number
come after all numbered ones, by their text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

# A leading "#" is allowed: the runner labels a search trial "#3" until it is asked.
_NUMBERED = re.compile(r"^\s*#?(\d+)(.*)$", re.DOTALL)


def label_key(label: Any) -> tuple[int, int, str, str]:
    """The sort key of a label: `"3A"` → `(0, 3, "a", "3A")`, `"x"` → `(1, 0, "x", "x")`."""
    text = "" if label is None or label != label else str(label)  # None or NaN: ""
    match = _NUMBERED.match(text)
    if match:
        return (0, int(match.group(1)), match.group(2).strip().casefold(), text)
    return (1, 0, text.casefold(), text)


def sort_labels(labels: Iterable[Any]) -> list[Any]:
    """The labels in the post's order."""
    return sorted(labels, key=label_key)


def label_order(labels: Iterable[Any]) -> list[int]:
    """The positions of `labels` in the post's order (stable among equal labels)."""
    keyed = list(labels)
    return sorted(range(len(keyed)), key=lambda i: label_key(keyed[i]))
