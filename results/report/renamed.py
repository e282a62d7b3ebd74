"""A run table that still reads the columns' names from before the glossary.

`results.load()` returns a `RunFrame`: a plain DataFrame but for one thing, a column
asked for by its old name (`runs["acc_val"]`, `runs.acc_val`, `runs.get("acc_val")`,
`"acc_val" in runs`, `runs[["label", "acc_val"]]`) is the column of its new name
(`val_acc_at_threshold`), with a DeprecationWarning. The old names go in the next
version. What changed besides the name: `threshold_epoch`, and the values at it, are
empty for a run that never reached the threshold (the post's 0.01 level is
`epoch_level`, `val_acc_level`).
"""

from __future__ import annotations

import warnings
from collections.abc import Hashable
from typing import Any

import pandas as pd

from results.report.columns import new_name


class RunFrame(pd.DataFrame):
    """A DataFrame whose columns also answer to their old names, with a DeprecationWarning."""

    @property
    def _constructor(self) -> type[RunFrame]:
        return RunFrame

    def _current(self, key: Any) -> Any:
        """The current name of a column asked for by its old one; any other key as it is."""
        if not isinstance(key, str) or key in self.columns:
            return key
        new = new_name(key)
        if new is None or new not in self.columns:
            return key
        warnings.warn(
            f"results.load(): the column {key!r} is now {new!r} (the glossary's name); "
            "the old name goes in the next version",
            DeprecationWarning,
            stacklevel=3,
        )
        return new

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, list):
            key = [self._current(k) for k in key]
        else:
            key = self._current(key)
        return super().__getitem__(key)

    def __getattr__(self, name: str) -> Any:
        if not name.startswith("_"):
            current = self._current(name)
            if current != name:
                return super().__getitem__(current)
        return super().__getattr__(name)

    def __contains__(self, key: Hashable) -> bool:
        return super().__contains__(self._current(key))

    def get(self, key: Any, default: Any = None) -> Any:
        """As `DataFrame.get`, old names included."""
        return super().get(self._current(key), default)
