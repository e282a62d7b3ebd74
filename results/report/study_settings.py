"""What the Optuna study remembers of its sweep file: the `[report]` settings.

The runner stores the sweep's `[report] threshold`, `thresholds` and `swing_start` as
study user attributes, `report_threshold`, `report_thresholds` and
`report_swing_start`. The tables use them unless the user gives `--threshold` or
`--swing-start`; a study made before a setting existed gets its default.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import inspect

from results.report.metrics import DEFAULT_SWING_START, DEFAULT_THRESHOLD, DEFAULT_THRESHOLDS
from results.store.optuna_study import study_user_attrs as optuna_user_attrs
from results.store.result_store import ResultStore

THRESHOLD_ATTR = "report_threshold"
THRESHOLDS_ATTR = "report_thresholds"
SWING_START_ATTR = "report_swing_start"


@dataclass(frozen=True)
class ReportSettings:
    """A study's `[report]` settings, as the tables read them.

    Args:
        threshold: the val_acc of `threshold_epoch`.
        thresholds: the thresholds of the raw table's `threshold_epoch_<t>` columns.
        swing_start: the start-up epochs `val_loss_swing` and `val_acc_dip` skip.
    """

    threshold: float = DEFAULT_THRESHOLD
    thresholds: tuple[float, ...] = DEFAULT_THRESHOLDS
    swing_start: int = DEFAULT_SWING_START


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


def _epochs(value: Any) -> int | None:
    """A count of epochs (an int ≥ 0, not a bool), else None."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def report_settings(store: ResultStore, study: str) -> ReportSettings:
    """The study's `[report]` settings; each one it lacks (a study made before the
    setting existed, or no Optuna study at all) or holds invalid has its default: the
    post's 0.92, (0.92, 0.93) and 5 epochs.

    Args:
        store: an open store of the study's database.
        study: the study's name.
    """
    attrs = study_user_attrs(store, study)
    threshold = _fraction(attrs.get(THRESHOLD_ATTR)) or DEFAULT_THRESHOLD
    listed = attrs.get(THRESHOLDS_ATTR)
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS
    if isinstance(listed, (list, tuple)) and listed and all(_fraction(t) for t in listed):
        thresholds = tuple(float(t) for t in listed)
    swing_start = _epochs(attrs.get(SWING_START_ATTR))
    return ReportSettings(
        threshold=threshold,
        thresholds=tuple(thresholds),
        swing_start=DEFAULT_SWING_START if swing_start is None else swing_start,
    )
