"""The post's run labels: their order (0, 1, 2, 3A, 3B, 4, …, 10, 11) and the `--runs`
flag that names runs by them.

Natural order: the leading number, then the suffix; labels without a leading number
(a grid's `λ=0.10 α=8.e-4`) come after all numbered ones in the order the sweep
registered them — its grid order — which a text sort would scramble (`2.e-3` < `8.e-4`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sweeps.errors import InputError

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


def parse_runs(text: str) -> list[str]:
    """The names a `--runs` flag gives: comma-separated labels or run keys (`3A,5`)."""
    return [name.strip() for name in text.split(",") if name.strip()]


def select_runs(names: Sequence[str], runs: Sequence[Mapping[str, Any]], study: str) -> list[Mapping[str, Any]]:
    """The runs `--runs` names, by label or run key, each once in the order named.

    Args:
        names: `parse_runs` of the flag.
        runs: the study's runs, each with its `label` and `run_key`.
        study: the study's name, for the message.

    Raises:
        InputError: a name no run has, or no name at all: one line with the study's labels.
    """
    by_name = {str(r["label"]): r for r in runs} | {str(r["run_key"]): r for r in runs}
    unknown = [name for name in names if name not in by_name]
    if unknown or not names:
        raise InputError(
            f"--runs: no run {', '.join(map(repr, unknown)) or repr(','.join(names))} in study {study!r}; "
            f"its labels: {', '.join(str(r['label']) for r in runs) or '(none)'}"
        )
    return [by_name[name] for name in dict.fromkeys(names)]
