"""The post's run labels in the post's order: 0, 1, 2, 3A, 3B, 4, …, 10, 11.

Natural order: the leading number, then the suffix; labels without a leading number
(a grid's `λ=0.10 α=8.e-4`) come after all numbered ones in the order the sweep
registered them — its grid order — which a text sort would scramble (`2.e-3` < `8.e-4`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

# A leading "#" is allowed: the runner labels a search trial "#3" until it is asked.
_NUMBERED = re.compile(r"^\s*#?(\d+)(.*)$", re.DOTALL)


def label_key(label: Any) -> tuple[int, int, str, str]:
    """The sort key of a label: `"3A"` → `(0, 3, "a", "3A")`; every unnumbered label
    `(1, 0, "", "")`, so that a stable sort keeps them in the order given."""
    text = "" if label is None or label != label else str(label)  # None or NaN: ""
    match = _NUMBERED.match(text)
    if match:
        return (0, int(match.group(1)), match.group(2).strip().casefold(), text)
    return (1, 0, "", "")


def sort_labels(labels: Iterable[Any]) -> list[Any]:
    """The labels in the post's order (unnumbered ones as given)."""
    return sorted(labels, key=label_key)


def label_order(labels: Iterable[Any]) -> list[int]:
    """The positions of `labels` in the post's order (stable among equal labels)."""
    keyed = list(labels)
    return sorted(range(len(keyed)), key=lambda i: label_key(keyed[i]))
