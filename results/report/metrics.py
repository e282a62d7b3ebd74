"""The metrics of one run, as pure functions over its epoch history.

The threshold epoch (one rule, `threshold_epoch`, which the runner's objective calls
too), the post's columns (`epoch`, `acc_val`, `acc`, `epo best`, `val acc best`,
`final loss`, `final val loss`), the threshold epochs of several thresholds, Δval_loss, the
fluctuation amplitude of the validation loss while the learning rate is high, and
the EMA weights' best val_acc and the final kernel norm.

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

#: The val_acc of `threshold_epoch` (the post's 0.92).
DEFAULT_THRESHOLD = 0.92
#: The thresholds whose epochs the raw table lists.
DEFAULT_THRESHOLDS = (0.92, 0.93)
#: Δval_loss ends when the LR first falls below this fraction of α.
LR_FRACTION = 0.1
#: The epoch columns a `History` holds.
HISTORY_COLUMNS = (
    "loss", "acc", "val_loss", "val_acc", "lr", "val_acc_ema", "weight_norm",
    "val_acc_bn", "val_acc_ema_bn", "test_acc", "weight_norm_invariant", "weight_norm_equilibrium",
)
#: The swings' window starts after this many epochs, so that start-up transients do
#: not count (`val_loss_swing`, `val_acc_dip`); the post's noise starts near epoch 10.
#: The default of `[report] swing_start` (`sweeps.sections.Report`, which cannot import it).
DEFAULT_SWING_START = 5
#: A norm within this fraction of its equilibrium has reached it (`equilibrium_epoch`).
EQUILIBRIUM_TOLERANCE = 0.1
#: val_acc from float32 (0.92 stored as 0.91999996): a level counts as reached within this.
THRESHOLD_TOLERANCE = 1e-6


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
    val_acc_ema: FloatArray | None = None
    weight_norm: FloatArray | None = None
    val_acc_bn: FloatArray | None = None
    val_acc_ema_bn: FloatArray | None = None
    test_acc: FloatArray | None = None
    weight_norm_invariant: FloatArray | None = None
    weight_norm_equilibrium: FloatArray | None = None

    @classmethod
    def from_records(cls, records: Iterable[Mapping[str, Any]]) -> History:
        """From epoch records (`epoch`, `loss`, `acc`, `val_loss`, `val_acc`, `lr`, and
        `val_acc_ema`, `weight_norm` where measured)."""
        rows = sorted(records, key=lambda record: int(record["epoch"]))
        columns = {
            name: np.array([_float(row.get(name)) for row in rows], dtype=np.float64)
            for name in HISTORY_COLUMNS
        }
        return cls(epoch=np.array([int(row["epoch"]) for row in rows], dtype=np.int64), **columns)

    def column(self, name: str) -> FloatArray:
        """A per-epoch column; NaN throughout for one not measured."""
        values = getattr(self, name)
        return np.full(len(self.epoch), math.nan) if values is None else values

    def __len__(self) -> int:
        return len(self.epoch)


def _float(value: Any) -> float:
    return math.nan if value is None else float(value)


def threshold_epoch(
    epochs: Sequence[int] | NDArray[np.int64],
    val_acc: Sequence[float | None] | FloatArray,
    threshold: float = DEFAULT_THRESHOLD,
) -> int | None:
    """The threshold epoch: the first epoch whose val_acc is at least `threshold`
    (within `THRESHOLD_TOLERANCE`); None for a run that never reached it.

    The one rule of every table, export and of the runner's objective. A missing
    val_acc (None, NaN: a diverged epoch) never counts.
    """
    epochs = np.asarray(epochs, dtype=np.int64)
    values = (
        val_acc.astype(np.float64, copy=False)
        if isinstance(val_acc, np.ndarray)
        else np.array([math.nan if v is None else v for v in val_acc], dtype=np.float64)
    )
    hits = np.flatnonzero(values >= threshold - THRESHOLD_TOLERANCE)  # NaN compares False
    return int(epochs[hits[0]]) if hits.size else None


@dataclass(frozen=True)
class Level:
    """The post's `epoch` column: where a run crosses the threshold, or, if it never
    does, where it first reached its highest 0.01 level (shown as `(47)`).

    Args:
        epoch: the first epoch at `level` (None for a run without val_acc).
        reached: whether `level` is the threshold itself.
        level: the threshold, or the highest 0.01 level the run reached (the post's
            runs 0–3A: run 0 peaks at 0.9129 and is listed at 0.91, epoch 47).
    """

    epoch: int | None
    reached: bool
    level: float | None


def level_epoch(
    epochs: Sequence[int] | NDArray[np.int64],
    val_acc: Sequence[float] | FloatArray,
    threshold: float = DEFAULT_THRESHOLD,
) -> Level:
    """The post's epoch: the `threshold_epoch`; else where the run first reached its
    highest 0.01 level (`floor(best·100)/100`), flagged `reached=False`."""
    epochs = np.asarray(epochs, dtype=np.int64)
    val_acc = np.asarray(val_acc, dtype=np.float64)
    epoch = threshold_epoch(epochs, val_acc, threshold)
    if epoch is not None:
        return Level(epoch, True, threshold)
    if not np.any(np.isfinite(val_acc)):
        return Level(None, False, None)
    # Round first: 0.57 * 100 is 56.99999999999999, float32's 0.57 is 0.56999999.
    level = math.floor(round(float(np.nanmax(val_acc)) * 100, 4)) / 100
    return Level(threshold_epoch(epochs, val_acc, level), False, level)


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
    """`loss_min` / `val_loss_min`, the post's `final loss` / `final val loss`: the
    lowest value the run reached.

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
    """For each threshold, its `threshold_epoch` (None: never)."""
    epochs = np.asarray(epochs, dtype=np.int64)
    val_acc = np.asarray(val_acc, dtype=np.float64)
    return {float(t): threshold_epoch(epochs, val_acc, float(t)) for t in thresholds}


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


def window_end(lr: Sequence[float] | FloatArray, alpha: float | None = None) -> int:
    """The end (exclusive index) of the post's high-LR window: the first epoch whose LR
    is below a tenth of α; the whole history when the LR never falls that far.

    Args:
        lr: per-epoch learning rate.
        alpha: the initial learning rate α; the first epoch's LR when not given.
    """
    lr = np.asarray(lr, dtype=np.float64)
    if alpha is None or not math.isfinite(alpha):
        alpha = float(lr[0]) if lr.size else math.nan
    low = np.flatnonzero(lr < LR_FRACTION * alpha)
    return int(low[0]) if low.size else len(lr)


def delta_val_loss(
    val_loss: Sequence[float] | FloatArray,
    lr: Sequence[float] | FloatArray,
    alpha: float | None = None,
) -> float:
    """Δval_loss, the fluctuation amplitude of val_loss: the height of its largest
    swing above its downward trend, from the first epoch until the LR first falls
    below a tenth of α (that epoch excluded; to the end if it never does).

    The trend passes through the lows: the record lows (epochs lower than every
    earlier one) and the valleys (epochs not above either neighbour). Between lows it
    runs straight from the last low to the next valley (or, with no valley ahead, the
    next record low); after the last low it stays at that low. The amplitude is the
    largest height of val_loss above the trend. So a curve that only falls gives 0
    (every epoch is a record low), a fall with one bump of height h gives h, a sine of
    amplitude a on a falling trend about 2a (trough to peak), and a spike after the
    last low its height above that low.

    Args:
        val_loss: per-epoch validation loss (NaN, a diverged epoch, is skipped; an
            infinite one gives inf).
        lr: per-epoch learning rate.
        alpha: the initial learning rate α; the first epoch's LR when not given.

    Returns:
        The amplitude, ≥ 0; NaN when the window holds no val_loss.
    """
    values = np.asarray(val_loss, dtype=np.float64)[: window_end(lr, alpha)]
    kept = np.flatnonzero(~np.isnan(values))
    if not kept.size:
        return math.nan
    v = values[kept]
    if np.isposinf(v).any():
        return math.inf
    return float(np.max(v - _trend(v)))


def _trend(v: FloatArray) -> FloatArray:
    """The downward trend of `delta_val_loss`: through the lows, straight to the next
    valley (see there)."""
    n = len(v)
    record = np.flatnonzero(v < np.minimum.accumulate(np.r_[math.inf, v[:-1]]))
    inner = np.arange(1, n - 1)
    valleys = inner[(v[inner] <= v[inner - 1]) & (v[inner] <= v[inner + 1])]
    lows = np.union1d(record, valleys)
    t = np.arange(n)
    left = lows[np.searchsorted(lows, t, side="right") - 1]
    # The next valley after each epoch, else the next record low, else none (-1).
    next_valley = np.searchsorted(valleys, t, side="right")
    next_record = np.searchsorted(record, t, side="right")
    right = np.where(
        next_valley < len(valleys),
        valleys[np.minimum(next_valley, len(valleys) - 1)] if len(valleys) else -1,
        np.where(next_record < len(record), record[np.minimum(next_record, len(record) - 1)], -1),
    )
    trend = v[left].copy()
    between = ~np.isin(t, lows) & (right > 0)
    j, k, i = left[between], right[between], t[between]
    trend[between] = v[j] + (v[k] - v[j]) * (i - j) / (k - j)
    return trend


def monotone_trend(values: FloatArray) -> FloatArray:
    """The least-squares monotone fit (isotonic regression, scikit-learn's), falling or
    rising, whichever fits better: the trend `swing_amplitude` removes."""
    from sklearn.isotonic import IsotonicRegression

    x = np.arange(len(values), dtype=np.float64)
    fits = [IsotonicRegression(increasing=rising).fit_transform(x, values) for rising in (False, True)]
    return min(fits, key=lambda fit: float(np.sum(np.square(values - fit))))


def swing_amplitude(
    values: Sequence[float] | FloatArray,
    lr: Sequence[float] | FloatArray,
    alpha: float | None = None,
    start: int = DEFAULT_SWING_START,
) -> float:
    """How far a curve swings around its monotone trend, in both directions: the
    highest point above the trend minus the lowest point below it.

    The trend is the isotonic (least-squares monotone) fit, falling or rising,
    whichever fits better (`monotone_trend`), over a window from epoch `start` + 1
    until the LR first falls below a tenth of α (`window_end`). So a smooth monotone
    curve in either direction gives 0 (it is its own trend); a U-shaped overfitting
    curve whose fall ends before the window gives 0 (in the window it only rises),
    one that falls and rises within the window the part no monotone trend explains
    (about its shorter arm); a single bump of height h on a level stretch gives h
    (the fit pools it with its level neighbours: part of h above the trend, the
    rest below).

    Args:
        values: per-epoch val_loss (or val_acc); NaN (a diverged epoch) is skipped,
            an infinite value gives inf.
        lr: per-epoch learning rate.
        alpha: the initial learning rate α; the first epoch's LR when not given.
        start: epochs skipped at the start (start-up transients).

    Returns:
        The amplitude, ≥ 0; NaN when the window holds fewer than two values.
    """
    window = np.asarray(values, dtype=np.float64)[start : window_end(lr, alpha)]
    v = window[~np.isnan(window)]
    if len(v) < 2:
        return math.nan
    if np.isinf(v).any():
        return math.inf
    residual = v - monotone_trend(v)
    return float(np.max(residual) - np.min(residual))


def equilibrium_epoch(
    epochs: Sequence[int] | NDArray[np.int64],
    norm: Sequence[float] | FloatArray,
    equilibrium: Sequence[float] | FloatArray,
    tolerance: float = EQUILIBRIUM_TOLERANCE,
) -> int | None:
    """The first epoch whose norm of the scale-invariant kernels is within
    `tolerance` (10 %) of the rotational equilibrium's norm; None: never (or not
    measured)."""
    ratio = np.asarray(norm, dtype=np.float64) / np.asarray(equilibrium, dtype=np.float64)
    hits = np.flatnonzero(np.abs(ratio - 1.0) <= tolerance)  # NaN compares False
    return int(np.asarray(epochs)[hits[0]]) if hits.size else None


def value_at_best(
    epochs: Sequence[int] | NDArray[np.int64], val_acc: FloatArray, values: FloatArray
) -> float:
    """`values` at the epoch of the best val_acc (e.g. test_acc, for split validation)."""
    best, _ = best_epoch(epochs, val_acc)
    if best is None:
        return math.nan
    return float(np.asarray(values)[np.flatnonzero(np.asarray(epochs) == best)[0]])


def val_loss_range(
    val_loss: Sequence[float] | FloatArray,
    lr: Sequence[float] | FloatArray,
    alpha: float | None = None,
) -> float:
    """max − min of val_loss from its first local minimum to the end of the high-LR
    window (`window_end`): the range, which counts the downward trend as well as the
    swings (Δval_loss before issue 11).

    Returns:
        The range; NaN when the window is empty (the LR falls before val_loss has a
        first minimum, or there is no val_loss).
    """
    val_loss = np.asarray(val_loss, dtype=np.float64)
    end = min(window_end(lr, alpha), len(val_loss))
    start = first_local_minimum(val_loss)
    if start is None or start >= end:
        return math.nan
    window = val_loss[start:end]
    return float(np.nanmax(window) - np.nanmin(window))


@dataclass(frozen=True)
class RunMetrics:
    """Every metric of one run, named as the tables name them
    (`results.report.columns`).

    Args:
        threshold_epoch: the first epoch at the threshold (`threshold_epoch`); None: never.
        threshold_reached: whether the run reached the threshold.
        val_acc_at_threshold, acc_at_threshold: val_acc and acc at `threshold_epoch`.
        val_acc_level: the threshold, or the highest 0.01 level below it (`level_epoch`).
        epoch_level: the first epoch at `val_acc_level`, the post's `epoch` column.
        val_acc_at_level, acc_at_level: val_acc and acc there, the post's `acc_val`, `acc`.
        epoch_best, val_acc_best: the post's `epo best`, `val acc best`.
        loss_min, val_loss_min: the lowest loss and val_loss (the post's `final loss`).
        delta_val_loss: Δval_loss, the fluctuation amplitude (`delta_val_loss`).
        val_loss_range: max − min of val_loss in the window (`val_loss_range`).
        epoch_best_ema, val_acc_ema_best: the same as `epoch_best`, `val_acc_best`
            for the validation with the EMA weights.
        weight_norm_final: the conv kernels' norm at the last epoch that has one.
        epochs_done: epochs recorded.
        last_epoch: the last recorded epoch.
        threshold_epochs: the threshold epoch of each threshold of a list.
        val_loss_swing: val_loss's swings above and below its monotone trend after
            the start-up epochs (`swing_amplitude`).
        val_acc_dip: the same amplitude for val_acc.
        val_acc_bn_best: the best BatchNorm-true val_acc (`val_acc_bn`).
        val_acc_ema_bn_best: the same for the EMA weights (`val_acc_ema_bn`): what an
            m sweep compares, since `val_acc_ema` pairs the averages with the raw
            weights' statistics.
        test_acc_at_best: test_acc at the epoch of the best val_acc (split validation).
        epoch_equilibrium: the first epoch whose scale-invariant kernels' norm is
            within 10 % of the rotational equilibrium's (`equilibrium_epoch`).
    """

    threshold_epoch: int | None
    threshold_reached: bool
    val_acc_at_threshold: float
    acc_at_threshold: float
    val_acc_level: float | None
    epoch_level: int | None
    val_acc_at_level: float
    acc_at_level: float
    epoch_best: int | None
    val_acc_best: float
    loss_min: float
    val_loss_min: float
    delta_val_loss: float
    val_loss_range: float
    epoch_best_ema: int | None
    val_acc_ema_best: float
    weight_norm_final: float
    epochs_done: int
    last_epoch: int | None
    threshold_epochs: dict[float, int | None] = field(default_factory=dict)
    val_loss_swing: float = math.nan
    val_acc_dip: float = math.nan
    val_acc_bn_best: float = math.nan
    val_acc_ema_bn_best: float = math.nan
    test_acc_at_best: float = math.nan
    epoch_equilibrium: int | None = None


def _at(history: History, name: str, epoch: int | None) -> float:
    """A per-epoch value at an epoch; NaN when there is none."""
    at = np.flatnonzero(history.epoch == epoch) if epoch is not None else np.array([], dtype=np.intp)
    return float(history.column(name)[at[0]]) if len(at) else math.nan


def run_metrics(
    history: History | Iterable[Mapping[str, Any]],
    *,
    threshold: float = DEFAULT_THRESHOLD,
    thresholds: Iterable[float] = DEFAULT_THRESHOLDS,
    alpha: float | None = None,
    swing_start: int = DEFAULT_SWING_START,
) -> RunMetrics:
    """All metrics of one run from its history (a `History` or epoch records);
    `swing_start` epochs are skipped by the swings."""
    if not isinstance(history, History):
        history = History.from_records(history)
    level = level_epoch(history.epoch, history.val_acc, threshold)
    crossed = level.epoch if level.reached else None
    epoch_best, val_acc_best = best_epoch(history.epoch, history.val_acc)
    epoch_best_ema, val_acc_ema_best = best_epoch(history.epoch, history.column("val_acc_ema"))
    norms = history.column("weight_norm")
    measured = norms[~np.isnan(norms)]
    return RunMetrics(
        threshold_epoch=crossed,
        threshold_reached=level.reached,
        val_acc_at_threshold=_at(history, "val_acc", crossed),
        acc_at_threshold=_at(history, "acc", crossed),
        val_acc_level=level.level,
        epoch_level=level.epoch,
        val_acc_at_level=_at(history, "val_acc", level.epoch),
        acc_at_level=_at(history, "acc", level.epoch),
        epoch_best=epoch_best,
        val_acc_best=val_acc_best,
        loss_min=final_minimum(history.loss),
        val_loss_min=final_minimum(history.val_loss),
        delta_val_loss=delta_val_loss(history.val_loss, history.lr, alpha),
        val_loss_range=val_loss_range(history.val_loss, history.lr, alpha),
        epoch_best_ema=epoch_best_ema,
        val_acc_ema_best=val_acc_ema_best,
        weight_norm_final=float(measured[-1]) if measured.size else math.nan,
        epochs_done=len(history),
        last_epoch=int(history.epoch[-1]) if len(history) else None,
        threshold_epochs=epochs_to_thresholds(history.epoch, history.val_acc, thresholds),
        val_loss_swing=swing_amplitude(history.val_loss, history.lr, alpha, swing_start),
        val_acc_dip=swing_amplitude(history.val_acc, history.lr, alpha, swing_start),
        val_acc_bn_best=best_epoch(history.epoch, history.column("val_acc_bn"))[1],
        val_acc_ema_bn_best=best_epoch(history.epoch, history.column("val_acc_ema_bn"))[1],
        test_acc_at_best=value_at_best(history.epoch, history.val_acc, history.column("test_acc")),
        epoch_equilibrium=equilibrium_epoch(
            history.epoch, history.column("weight_norm_invariant"), history.column("weight_norm_equilibrium")
        ),
    )
