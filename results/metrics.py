"""The metrics of one run, as pure functions over its epoch history.

The post's columns (`epoch`, `acc_val`, `acc`, `epo best`, `val acc best`, `final loss`,
`final val loss`), the epochs to each of several thresholds, and Δval_loss, the
fluctuation amplitude of the validation loss while the learning rate is high.

Epochs are 1-based, as Keras prints them. Missing values (NaN: a diverged epoch) are
skipped by every metric.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]

#: The post's threshold of the `epoch` column.
DEFAULT_THRESHOLD = 0.92
#: The thresholds whose epochs the raw table lists.
DEFAULT_THRESHOLDS = (0.92, 0.93)
#: Δval_loss ends when the LR first falls below this fraction of α.
LR_FRACTION = 0.1
# val_acc from float32 (0.92 stored as 0.91999996): a level counts as reached within this.
_EPS = 1e-6


@dataclass(frozen=True)
class History:
    """One run's epoch history, sorted by epoch, as float arrays (NaN where missing).

    Args:
        epoch: 1-based epoch numbers, increasing.
        loss, acc, val_loss, val_acc, lr: the per-epoch values.
    """

    epoch: NDArray[np.int64]
    loss: FloatArray
    acc: FloatArray
    val_loss: FloatArray
    val_acc: FloatArray
    lr: FloatArray

    @classmethod
    def from_records(cls, records: Iterable[Mapping[str, Any]]) -> History:
        """From epoch records (`epoch`, `loss`, `acc`, `val_loss`, `val_acc`, `lr`)."""
        rows = sorted(records, key=lambda record: int(record["epoch"]))
        columns = {
            name: np.array([_float(row.get(name)) for row in rows], dtype=np.float64)
            for name in ("loss", "acc", "val_loss", "val_acc", "lr")
        }
        return cls(epoch=np.array([int(row["epoch"]) for row in rows], dtype=np.int64), **columns)

    def __len__(self) -> int:
        return len(self.epoch)


def _float(value: Any) -> float:
    return math.nan if value is None else float(value)


@dataclass(frozen=True)
class ThresholdEpoch:
    """Where a run crosses the threshold, or, if it never does, its highest 0.01 level.

    Args:
        epoch: the first epoch at `level` (None for a run without val_acc).
        reached: whether `level` is the threshold itself.
        level: the threshold, or the highest 0.01 level the run reached (the post's
            runs 0–3A: run 0 peaks at 0.9129 and is listed at 0.91, epoch 47).
    """

    epoch: int | None
    reached: bool
    level: float | None


def _first_at_or_above(epochs: NDArray[np.int64], values: FloatArray, level: float) -> int | None:
    hits = np.flatnonzero(values >= level - _EPS)  # NaN compares False
    return int(epochs[hits[0]]) if hits.size else None


def threshold_epoch(
    epochs: Sequence[int] | NDArray[np.int64],
    val_acc: Sequence[float] | FloatArray,
    threshold: float = DEFAULT_THRESHOLD,
) -> ThresholdEpoch:
    """The first epoch with `val_acc ≥ threshold`; else where the run first reached
    its highest 0.01 level (`floor(best·100)/100`), flagged `reached=False`."""
    epochs = np.asarray(epochs, dtype=np.int64)
    val_acc = np.asarray(val_acc, dtype=np.float64)
    epoch = _first_at_or_above(epochs, val_acc, threshold)
    if epoch is not None:
        return ThresholdEpoch(epoch, True, threshold)
    if not np.any(np.isfinite(val_acc)):
        return ThresholdEpoch(None, False, None)
    # Round to _EPS first: 0.57 * 100 is 56.99999999999999, float32's 0.57 is 0.56999999.
    level = math.floor(round(float(np.nanmax(val_acc)) * 100, 4)) / 100
    return ThresholdEpoch(_first_at_or_above(epochs, val_acc, level), False, level)


def best_epoch(
    epochs: Sequence[int] | NDArray[np.int64], val_acc: Sequence[float] | FloatArray
) -> tuple[int | None, float]:
    """The epoch of the highest val_acc (the first, on a tie) and that val_acc."""
    val_acc = np.asarray(val_acc, dtype=np.float64)
    if not np.any(np.isfinite(val_acc)):
        return None, math.nan
    index = int(np.nanargmax(val_acc))
    return int(np.asarray(epochs)[index]), float(val_acc[index])


def final_minimum(values: Sequence[float] | FloatArray) -> float:
    """The post's `final loss` / `final val loss`: the lowest value the run reached.

    The post describes it as the value "reached before the loss went up again": the
    lowest point before a late rise, which is the minimum of the whole history (a
    later, lower value would be "before the loss went up again" too).
    """
    values = np.asarray(values, dtype=np.float64)
    return float(np.nanmin(values)) if np.any(np.isfinite(values)) else math.nan


def epochs_to_thresholds(
    epochs: Sequence[int] | NDArray[np.int64],
    val_acc: Sequence[float] | FloatArray,
    thresholds: Iterable[float] = DEFAULT_THRESHOLDS,
) -> dict[float, int | None]:
    """For each threshold, the first epoch with `val_acc ≥` it (None: never)."""
    epochs = np.asarray(epochs, dtype=np.int64)
    val_acc = np.asarray(val_acc, dtype=np.float64)
    return {float(t): _first_at_or_above(epochs, val_acc, float(t)) for t in thresholds}


def first_local_minimum(values: Sequence[float] | FloatArray) -> int | None:
    """The index of the first local minimum: lower than the value before it (or the
    first value) and not above the one after it (or the last value). NaN skipped."""
    values = np.asarray(values, dtype=np.float64)
    finite = np.flatnonzero(np.isfinite(values))
    v = values[finite]
    for i in range(len(v)):
        if (i == 0 or v[i] < v[i - 1]) and (i == len(v) - 1 or v[i] <= v[i + 1]):
            return int(finite[i])
    return None


def delta_val_loss(
    val_loss: Sequence[float] | FloatArray,
    lr: Sequence[float] | FloatArray,
    alpha: float | None = None,
) -> float:
    """Δval_loss: max − min of val_loss from its first local minimum until the LR
    first falls below a tenth of α (that epoch excluded; to the end if it never does).

    Args:
        val_loss: per-epoch validation loss.
        lr: per-epoch learning rate.
        alpha: the initial learning rate α; the first epoch's LR when not given.

    Returns:
        The amplitude; NaN when the window is empty (the LR falls before val_loss has
        a first minimum, or there is no val_loss).
    """
    val_loss = np.asarray(val_loss, dtype=np.float64)
    lr = np.asarray(lr, dtype=np.float64)
    if alpha is None or not math.isfinite(alpha):
        alpha = float(lr[0]) if lr.size else math.nan
    low = np.flatnonzero(lr < LR_FRACTION * alpha)
    end = int(low[0]) if low.size else len(val_loss)
    start = first_local_minimum(val_loss)
    if start is None or start >= end:
        return math.nan
    window = val_loss[start:end]
    return float(np.nanmax(window) - np.nanmin(window))


@dataclass(frozen=True)
class RunMetrics:
    """Every metric of one run.

    Args:
        threshold_epoch: the `epoch` column (see `threshold_epoch`).
        reached: whether the run reached the threshold (else the 0.01 level).
        level: the threshold, or the level shown instead.
        acc_val, acc: val_acc and acc at `threshold_epoch`.
        epoch_best, val_acc_best: `epo best`, `val acc best`.
        final_loss, final_val_loss: the lowest loss and val_loss.
        epochs_to: epochs to each threshold of a list.
        delta_val_loss: Δval_loss.
        epochs_done: epochs recorded.
        last_epoch: the last recorded epoch.
    """

    threshold_epoch: int | None
    reached: bool
    level: float | None
    acc_val: float
    acc: float
    epoch_best: int | None
    val_acc_best: float
    final_loss: float
    final_val_loss: float
    delta_val_loss: float
    epochs_done: int
    last_epoch: int | None
    epochs_to: dict[float, int | None] = field(default_factory=dict)


def run_metrics(
    history: History | Iterable[Mapping[str, Any]],
    *,
    threshold: float = DEFAULT_THRESHOLD,
    thresholds: Iterable[float] = DEFAULT_THRESHOLDS,
    alpha: float | None = None,
) -> RunMetrics:
    """All metrics of one run from its history (a `History` or epoch records)."""
    if not isinstance(history, History):
        history = History.from_records(history)
    crossing = threshold_epoch(history.epoch, history.val_acc, threshold)
    at = (
        np.flatnonzero(history.epoch == crossing.epoch)
        if crossing.epoch is not None
        else np.array([], dtype=np.intp)
    )
    epoch_best, val_acc_best = best_epoch(history.epoch, history.val_acc)
    return RunMetrics(
        threshold_epoch=crossing.epoch,
        reached=crossing.reached,
        level=crossing.level,
        acc_val=float(history.val_acc[at[0]]) if len(at) else math.nan,
        acc=float(history.acc[at[0]]) if len(at) else math.nan,
        epoch_best=epoch_best,
        val_acc_best=val_acc_best,
        final_loss=final_minimum(history.loss),
        final_val_loss=final_minimum(history.val_loss),
        delta_val_loss=delta_val_loss(history.val_loss, history.lr, alpha),
        epochs_done=len(history),
        last_epoch=int(history.epoch[-1]) if len(history) else None,
        epochs_to=epochs_to_thresholds(history.epoch, history.val_acc, thresholds),
    )
