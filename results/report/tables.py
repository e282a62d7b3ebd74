"""The post's table, the raw table and the epoch table of a study, as DataFrames.

`post_table` has the post's columns in its order, as numbers; `format_post` writes
them as the post does (`0.91230`, `8.e-4`, `(47)` for a run that never reached the
threshold); `render_rich` prints them. `raw_table` has every metric and setting of a
run in snake_case columns at full precision.

The inputs are the frames of `results.report.frames.read_study` (or `results.load` and
`results.load_epochs`): a run frame with `run_id`, `label`, `comment` and the
flattened configuration, and an epoch frame with `run_id`, `epoch` and the metrics.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from results.report.labels import label_order
from results.report.metrics import (
    DEFAULT_THRESHOLD,
    DEFAULT_THRESHOLDS,
    HISTORY_COLUMNS,
    History,
    RunMetrics,
    run_metrics,
)
from sweeps.notation import format_number

if TYPE_CHECKING:
    from rich.table import Table

#: The post's columns, in its order.
POST_COLUMNS = (
    "#",
    "epoch",
    "acc_val",
    "acc",
    "epo best",
    "val acc best",
    "final loss",
    "final val loss",
    "shift",
    "l2",
    "λ",
    "m",
    "α",
    "reduction model",
    "comment",
)
#: `post_table`'s flag column: whether `epoch` is the threshold's or the 0.01 level's.
REACHED = "reached"
#: The post's columns that come from the configuration, and where.
_SETTINGS = {"shift": "shift", "l2": "l2", "λ": "weight_decay", "m": "ema_momentum", "α": "learning_rate"}
# Decimals of the post's accuracy columns.
_DECIMALS = {"acc_val": 5, "acc": 4, "val acc best": 5}
_INTEGERS = ("epoch", "epo best")
_LOSSES = ("final loss", "final val loss")
_FIRST_RAW = ("study", "label", "trial_number", "run_key", "run_id", "state", "attempts")


def threshold_column(threshold: float) -> str:
    """The raw column of the epochs to a threshold: 0.92 → `epochs_to_0_92`."""
    return "epochs_to_" + format(threshold, "g").replace(".", "_").replace("-", "m")


def _join_key(runs: pd.DataFrame, epochs: pd.DataFrame) -> str:
    for key in ("run_id", "run_key", "label"):
        if key in runs.columns and key in epochs.columns:
            return key
    raise ValueError("the run and epoch frames share none of run_id, run_key, label")


def metrics_frame(
    runs: pd.DataFrame,
    epochs: pd.DataFrame,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    thresholds: Iterable[float] = DEFAULT_THRESHOLDS,
) -> pd.DataFrame:
    """Every run's `RunMetrics` as columns, row for row with `runs`.

    One pass over the epochs sorted by run: the metrics are the pure functions of
    `results.report.metrics`, applied to each run's slice of numpy arrays.
    """
    thresholds = tuple(thresholds)
    key = _join_key(runs, epochs)
    ordered = epochs.sort_values([key, "epoch"], kind="stable")
    keys = ordered[key].to_numpy()
    arrays = {
        name: (
            ordered[name].to_numpy(dtype=np.float64)
            if name in ordered.columns
            else np.full(len(ordered), math.nan)  # a frame from before revision 0002
        )
        for name in HISTORY_COLUMNS
    }
    epoch = ordered["epoch"].to_numpy(dtype=np.int64)
    bounds: dict[Any, tuple[int, int]] = {}
    if len(keys):
        starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
        bounds = dict(zip(keys[starts], zip(starts, np.r_[starts[1:], len(keys)], strict=True), strict=True))
    alphas = (
        runs["learning_rate"] if "learning_rate" in runs.columns else pd.Series(math.nan, index=runs.index)
    )
    empty = History(epoch=epoch[:0], **{name: values[:0] for name, values in arrays.items()})
    rows = []
    for run, alpha in zip(runs[key], alphas, strict=True):
        if run in bounds:
            lo, hi = bounds[run]
            history = History(epoch=epoch[lo:hi], **{name: values[lo:hi] for name, values in arrays.items()})
        else:
            history = empty
        alpha = float(alpha) if alpha is not None and not pd.isna(alpha) else None
        rows.append(
            _metric_row(
                run_metrics(history, threshold=threshold, thresholds=thresholds, alpha=alpha), thresholds
            )
        )
    columns = [
        "threshold_epoch",
        "reached",
        "level",
        "acc_val",
        "acc",
        "epoch_best",
        "val_acc_best",
        "final_loss",
        "final_val_loss",
        *map(threshold_column, thresholds),
        "delta_val_loss",
        "val_loss_range",
        "epoch_best_ema",
        "val_acc_ema_best",
        "final_weight_norm",
        "epochs_done",
        "last_epoch",
        *ISSUE_19_COLUMNS,
    ]
    frame = pd.DataFrame.from_records(rows, columns=columns, index=runs.index)
    integers = [
        "threshold_epoch", "epoch_best", "epoch_best_ema", "last_epoch", "equilibrium_epoch",
        *map(threshold_column, thresholds),
    ]
    frame = frame.astype({name: "Int64" for name in integers} | {"reached": "bool", "epochs_done": "int64"})
    return frame.astype(
        {
            name: "float64"
            for name in (
                "level",
                "acc_val",
                "acc",
                "val_acc_best",
                "final_loss",
                "final_val_loss",
                "delta_val_loss",
                "val_loss_range",
                "val_acc_ema_best",
                "final_weight_norm",
                "val_loss_swing",
                "val_acc_dip",
                "val_acc_bn_best",
                "test_acc_at_best",
            )
        }
    )


#: The run-level columns of issue 19 (`RunMetrics` explains each).
ISSUE_19_COLUMNS = (
    "val_loss_swing", "val_acc_dip", "val_acc_bn_best", "test_acc_at_best", "equilibrium_epoch",
)


def _metric_row(metrics: RunMetrics, thresholds: Sequence[float]) -> tuple[Any, ...]:
    return (
        metrics.threshold_epoch,
        metrics.reached,
        metrics.level,
        metrics.acc_val,
        metrics.acc,
        metrics.epoch_best,
        metrics.val_acc_best,
        metrics.final_loss,
        metrics.final_val_loss,
        *(metrics.epochs_to[float(t)] for t in thresholds),
        metrics.delta_val_loss,
        metrics.val_loss_range,
        metrics.epoch_best_ema,
        metrics.val_acc_ema_best,
        metrics.final_weight_norm,
        metrics.epochs_done,
        metrics.last_epoch,
        *(getattr(metrics, name) for name in ISSUE_19_COLUMNS),
    )


def _column(runs: pd.DataFrame, name: str, default: Any = math.nan) -> pd.Series:
    return runs[name] if name in runs.columns else pd.Series(default, index=runs.index)


#: The orders `sort_runs` knows: the file's own, the post's label order, or a column
#: (accuracies highest first, everything else lowest first; missing values last).
SORTS = (
    "file",
    "label",
    "val_acc_best",
    "val_acc_ema_best",
    "threshold_epoch",
    "delta_val_loss",
    "final_weight_norm",
    "weight_decay",
    "learning_rate",
    "ema_momentum",
)
_DESCENDING = ("val_acc_best", "val_acc_ema_best")


def sort_runs(
    runs_df: pd.DataFrame, epochs_df: pd.DataFrame, by: str = "file", threshold: float = DEFAULT_THRESHOLD
) -> pd.DataFrame:
    """The run frame in an order of `SORTS`, stable (ties keep the file's order).

    Args:
        runs_df: the run frame, in the file's order (`results.report.frames.read_study`:
            the order the sweep registered its runs, a grid in grid order).
        epochs_df: the epoch frame, for the metric orders.
        by: `file` (as given), `label` (the post's: 0, 1, 2, 3A, 3B, …, numbered
            labels by number, others after them as given), or a column of `SORTS`.
        threshold: the val_acc of `threshold_epoch`.

    Raises:
        ValueError: an order not in `SORTS`.
    """
    if by not in SORTS:
        raise ValueError(f"sort {by!r}: must be one of {', '.join(SORTS)}")
    if by == "file":
        return runs_df.reset_index(drop=True)
    if by == "label":
        return runs_df.iloc[label_order(_column(runs_df, "label", ""))].reset_index(drop=True)
    if by in runs_df.columns:
        values = pd.to_numeric(runs_df[by], errors="coerce")
    else:
        values = metrics_frame(runs_df, epochs_df, threshold=threshold, thresholds=())[by]
    key = values.astype("float64").to_numpy()
    key = -key if by in _DESCENDING else key
    order = np.argsort(np.where(np.isnan(key), np.inf, key), kind="stable")
    return runs_df.iloc[order].reset_index(drop=True)


def post_table(
    runs_df: pd.DataFrame, epochs_df: pd.DataFrame, threshold: float = DEFAULT_THRESHOLD
) -> pd.DataFrame:
    """The post's table: `POST_COLUMNS` then `reached`, one row per run in the order of
    `runs_df` (`sort_runs` orders it).

    Args:
        runs_df: the run frame (`label`, `comment`, `shift`, `l2`, `weight_decay`,
            `ema_momentum`, `learning_rate`, `reduction_model`, and a key shared with
            `epochs_df`: `run_id`, else `run_key`, else `label`).
        epochs_df: the epoch frame.
        threshold: the val_acc of the `epoch` column.

    Returns:
        Numbers, not text (`format_post` writes them as the post does). `epoch`,
        `acc_val` and `acc` are at the threshold when `reached`, else at the highest
        0.01 level the run reached.
    """
    metrics = metrics_frame(runs_df, epochs_df, threshold=threshold, thresholds=())
    table = pd.DataFrame(
        {
            "#": _column(runs_df, "label", "").astype(str),
            "epoch": metrics["threshold_epoch"],
            "acc_val": metrics["acc_val"],
            "acc": metrics["acc"],
            "epo best": metrics["epoch_best"],
            "val acc best": metrics["val_acc_best"],
            "final loss": metrics["final_loss"],
            "final val loss": metrics["final_val_loss"],
            **{column: _column(runs_df, source).astype("float64") for column, source in _SETTINGS.items()},
            "reduction model": _column(runs_df, "reduction_model", "").fillna("").astype(str),
            "comment": _column(runs_df, "comment", "").fillna("").astype(str),
            REACHED: metrics["reached"],
        },
        index=runs_df.index,
    )
    return table.reset_index(drop=True)


def raw_table(
    runs_df: pd.DataFrame,
    epochs_df: pd.DataFrame,
    threshold: float = DEFAULT_THRESHOLD,
    thresholds: Iterable[float] = DEFAULT_THRESHOLDS,
) -> pd.DataFrame:
    """Every metric and setting of each run, snake_case, full precision, in the order
    of `runs_df`.

    The run columns (study, label, trial number, run key, state, attempts, …), the
    metrics (`threshold`, `threshold_epoch`, `reached`, `level`, `acc_val`, `acc`,
    `epoch_best`, `val_acc_best`, `final_loss`, `final_val_loss`, `epochs_to_0_92`, …,
    `delta_val_loss` (the fluctuation amplitude), `val_loss_range`, `epoch_best_ema`,
    `val_acc_ema_best`, `final_weight_norm`, `epochs_done`, `last_epoch`, `val_loss_swing`,
    `val_acc_dip`, `val_acc_bn_best`, `test_acc_at_best`, `equilibrium_epoch`), `duration` (seconds from the first
    claim to the end), `train_seconds` (the epochs' seconds summed), then every
    configuration value.
    """
    metrics = metrics_frame(runs_df, epochs_df, threshold=threshold, thresholds=thresholds)
    key = _join_key(runs_df, epochs_df)
    train_seconds = (
        epochs_df.groupby(key)["seconds"].sum(min_count=1) if len(epochs_df) else pd.Series(dtype="float64")
    )
    extra = pd.DataFrame(
        {
            "threshold": float(threshold),
            "duration": _duration(runs_df),
            "train_seconds": runs_df[key].map(train_seconds).astype("float64"),
        },
        index=runs_df.index,
    )
    first = [name for name in _FIRST_RAW if name in runs_df.columns]
    rest = [name for name in runs_df.columns if name not in first]
    table = pd.concat(
        [runs_df[first], extra[["threshold"]], metrics, extra[["duration", "train_seconds"]], runs_df[rest]],
        axis=1,
    )
    return table.reset_index(drop=True)


def _duration(runs: pd.DataFrame) -> pd.Series:
    if "started" not in runs.columns or "finished" not in runs.columns:
        return pd.Series(math.nan, index=runs.index)
    started = pd.to_datetime(runs["started"], utc=True)
    finished = pd.to_datetime(runs["finished"], utc=True)
    return (finished - started).dt.total_seconds()


def epochs_table(runs_df: pd.DataFrame, epochs_df: pd.DataFrame) -> pd.DataFrame:
    """The long per-epoch table: label, run key, trial number, then the epoch record,
    by label then epoch, full precision."""
    from results.report.frames import EPOCH_COLUMNS, order_epochs

    if not set(EPOCH_COLUMNS) <= set(epochs_df.columns):
        epochs_df = order_epochs(runs_df, epochs_df)
    return epochs_df[[name for name in EPOCH_COLUMNS if name != "run_id"]].reset_index(drop=True)


# -- the post's number formats ------------------------------------------------------


def _decimals(value: Any, decimals: int) -> str:
    return "" if pd.isna(value) else f"{float(value):.{decimals}f}"


def format_loss(value: Any) -> str:
    """`final loss` as the post writes it: `0.0251`, and `2.5160e-04` below 0.001."""
    if pd.isna(value):
        return ""
    value = float(value)
    return f"{value:.4e}" if 0 < abs(value) < 1e-3 else f"{value:.4f}"


def _integer(value: Any) -> str:
    return "" if pd.isna(value) else str(int(value))


def format_post(table: pd.DataFrame, *, marks: bool = True) -> pd.DataFrame:
    """`post_table` as text, in the post's number formats.

    Args:
        table: `post_table`'s frame.
        marks: put a run that never reached the threshold in parentheses (`(47)`,
            `(0.91230)`) and drop `reached`, for reading; `False` keeps the plain
            numbers and the `reached` column, for CSV and JSON.
    """
    text = pd.DataFrame(index=table.index)
    reached = table[REACHED].astype(bool) if REACHED in table.columns else pd.Series(True, index=table.index)
    for column in POST_COLUMNS:
        values = table[column]
        if column in _INTEGERS:
            cells = values.map(_integer)
        elif column in _DECIMALS:
            cells = values.map(lambda v, d=_DECIMALS[column]: _decimals(v, d))
        elif column in _LOSSES:
            cells = values.map(format_loss)
        elif column in _SETTINGS:
            cells = values.map(lambda v: "" if pd.isna(v) else format_number(float(v)))
        else:
            cells = values.fillna("").astype(str)
        if marks and column in ("epoch", "acc_val", "acc"):
            cells = cells.where(reached | (cells == ""), "(" + cells + ")")
        text[column] = cells.astype(object)
    if not marks:
        text[REACHED] = reached
    return text


def render_rich(df: pd.DataFrame, *, title: str | None = None) -> Table:
    """A rich table of a post table (formatted with `format_post`) or any frame."""
    from rich.table import Table

    text = (
        format_post(df) if set(POST_COLUMNS) <= set(df.columns) and REACHED in df.columns else stringify(df)
    )
    table = Table(title=title, header_style="bold")
    for column in text.columns:
        numeric = column not in ("#", "reduction model", "comment") and looks_numeric(text[column])
        table.add_column(str(column), justify="right" if numeric else "left", overflow="fold")
    for row in text.itertuples(index=False):
        table.add_row(*row)
    return table


def looks_numeric(cells: pd.Series) -> bool:
    for cell in cells:
        cell = str(cell).strip("()")
        if cell:
            try:
                float(cell)
            except ValueError:
                return False
    return True


def stringify(frame: pd.DataFrame) -> pd.DataFrame:
    """Any frame as text at full precision: floats as Python writes them (shortest
    round trip), missing values empty, datetimes ISO 8601."""
    text = pd.DataFrame(index=frame.index)
    for column in frame.columns:
        text[column] = frame[column].map(_cell).astype(object)
    return text


def _cell(value: Any) -> str:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return ""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (float, np.floating)):
        return repr(float(value))
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return str(value)
