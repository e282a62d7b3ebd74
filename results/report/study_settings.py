"""What the Optuna study remembers of its sweep file: the `[report]` thresholds.

The runner stores the sweep's `[report] threshold` (and `thresholds`) as study user
attributes, `report_threshold` and `report_thresholds`. The tables use them unless
the user gives `--threshold`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from sqlalchemy import inspect

from results.report.metrics import DEFAULT_THRESHOLD, DEFAULT_THRESHOLDS
from results.store.optuna_study import study_user_attrs as optuna_user_attrs
from results.store.result_store import ResultStore

THRESHOLD_ATTR = "report_threshold"
THRESHOLDS_ATTR = "report_thresholds"


def study_user_attrs(store: ResultStore, study: str) -> dict[str, Any]:
    """The Optuna study's user attributes; empty when there is no such Optuna study.

    Reads through Optuna's own storage API, and only when Optuna's tables exist: a
    results-only database (tests, benchmarks) neither imports Optuna nor gets its
    tables created by a read.
    """
    inspector = inspect(store.engine)
    if not (inspector.has_table("studies") and inspector.has_table("study_user_attributes")):
        return {}
    return optuna_user_attrs(store.url, study, read_only=store.read_only)


def _fraction(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and 0 < number <= 1 else None


def report_thresholds(store: ResultStore, study: str) -> tuple[float, tuple[float, ...]]:
    """The study's `(threshold, thresholds)`, else the post's `(0.92, (0.92, 0.93))`."""
    attrs = study_user_attrs(store, study)
    threshold = _fraction(attrs.get(THRESHOLD_ATTR)) or DEFAULT_THRESHOLD
    listed = attrs.get(THRESHOLDS_ATTR)
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS
    if isinstance(listed, (list, tuple)) and listed and all(_fraction(t) for t in listed):
        thresholds = tuple(float(t) for t in listed)
    return threshold, tuple(thresholds)
