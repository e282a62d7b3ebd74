"""The summary, the post's table, the raw table and the epoch table of a study, as DataFrames.

Every column is named as `results.report.columns` defines it. `summary_table` has the
post's columns under those names, as numbers, `format_summary` writes them for
reading; `post_table` has them under the post's headers (`--style post`) and
`format_post` writes them as the post does (`0.91230`, `8.e-4`, `(47)` for a run that
never reached the threshold). `raw_table` has every metric and setting of a run at
full precision. `results.report.terminal` fits them to a terminal.

The inputs are the frames of `results.report.frames.read_study` (or `results.load` and
`results.load_epochs`): a run frame with `run_id`, `label`, `comment` and the
flattened configuration, and an epoch frame with `run_id`, `epoch` and the metrics.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import fields
from typing import Any

import numpy as np
import pandas as pd

from results.report.columns import (
    IDENTITY,
    METRICS,
    SUMMARY,
    column,
    format_value,
    post_headers,
    threshold_column,
)
from results.report.labels import label_order
from results.report.metrics import (
    DEFAULT_SWING_START,
    DEFAULT_THRESHOLD,
    DEFAULT_THRESHOLDS,
    HISTORY_COLUMNS,
    History,
    RunMetrics,
    run_metrics,
)

#: The post's columns, in its order (`--style post`).
POST_COLUMNS = tuple(post_headers().values())
#: `post_table`'s flag column: whether `epoch` is the threshold's or the 0.01 level's.
REACHED = "threshold_reached"
#: The post table's columns from `metrics_frame` (at the 0.01 level when the threshold
#: was never reached, the post's `(47)`), and those from the run frame.
_POST_METRICS = {
    "epoch": "epoch_level",
    "acc_val": "val_acc_at_level",
    "acc": "acc_at_level",
    "epo best": "epoch_best",
    "val acc best": "val_acc_best",
    "final loss": "loss_min",
    "final val loss": "val_loss_min",
}
_FIRST_RAW = tuple(c.name for c in IDENTITY)
#: `metrics_frame`'s columns beyond the definition's, for the post's table only.
_LEVEL_VALUES = ("val_acc_at_level", "acc_at_level")
_METRIC_FIELDS = tuple(f.name for f in fields(RunMetrics) if f.name != "threshold_epochs")


def threshold_columns(thresholds: Iterable[float]) -> list[str]:
    """The raw table's `threshold_epoch_<t>` columns of some thresholds."""
    return [threshold_column(t) for t in thresholds]


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
    swing_start: int = DEFAULT_SWING_START,
) -> pd.DataFrame:
    """Every run's `RunMetrics` as columns, row for row with `runs`.

    One pass over the epochs sorted by run: the metrics are the pure functions of
    `results.report.metrics`, applied to each run's slice of numpy arrays.

    Args:
        runs: the run frame (a key shared with `epochs`, and `learning_rate`).
        epochs: the epoch frame.
        threshold: the val_acc of `threshold_epoch`.
        thresholds: the thresholds of the `threshold_epoch_<t>` columns.
        swing_start: the start-up epochs the swings skip (`[report] swing_start`).
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
                run_metrics(
                    history, threshold=threshold, thresholds=thresholds, alpha=alpha, swing_start=swing_start
                ),
                thresholds,
            )
        )
    columns = [*_METRIC_FIELDS, *threshold_columns(thresholds)]
    frame = pd.DataFrame.from_records(rows, columns=columns, index=runs.index)
    return frame.astype({name: _dtype(name) for name in columns})


def _dtype(name: str) -> str:
    """The pandas dtype of a metric column, from its format in the definition."""
    format = column(name).format
    return "Int64" if format == "integer" else "bool" if format == "flag" else "float64"


def _metric_row(metrics: RunMetrics, thresholds: Sequence[float]) -> tuple[Any, ...]:
    return (
        *(getattr(metrics, name) for name in _METRIC_FIELDS),
        *(metrics.threshold_epochs[float(t)] for t in thresholds),
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
    "weight_norm_final",
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


def summary_table(
    runs_df: pd.DataFrame, epochs_df: pd.DataFrame, threshold: float = DEFAULT_THRESHOLD
) -> pd.DataFrame:
    """The table of `sweep run`, `sweep export` and the report: the post's columns by
    their names (`results.report.columns.SUMMARY`), as numbers, one row per run in the
    order of `runs_df` (`sort_runs` orders it).

    Args:
        runs_df: the run frame (`label`, `comment`, `shift`, `l2`, `weight_decay`,
            `ema_momentum`, `learning_rate`, `lr_schedule`, and a key shared with
            `epochs_df`: `run_id`, else `run_key`, else `label`).
        epochs_df: the epoch frame.
        threshold: the val_acc of `threshold_epoch`.

    Returns:
        `threshold_epoch`, `val_acc_at_threshold` and `acc_at_threshold` are empty
        (NaN, `<NA>`) for a run that never reached the threshold.
    """
    return _summary(runs_df, metrics_frame(runs_df, epochs_df, threshold=threshold, thresholds=()))


def _summary(runs_df: pd.DataFrame, metrics: pd.DataFrame) -> pd.DataFrame:
    table = pd.DataFrame(index=runs_df.index)
    for name in SUMMARY:
        if name in metrics.columns:
            table[name] = metrics[name]
        elif column(name).format == "setting":
            table[name] = pd.to_numeric(_column(runs_df, name), errors="coerce").astype("float64")
        else:
            table[name] = _column(runs_df, name, "").fillna("").astype(str)
    return table.reset_index(drop=True)


def post_table(
    runs_df: pd.DataFrame, epochs_df: pd.DataFrame, threshold: float = DEFAULT_THRESHOLD
) -> pd.DataFrame:
    """The post's table (`--style post`): `POST_COLUMNS` then `threshold_reached`, one
    row per run in the order of `runs_df`.

    Args:
        runs_df: the run frame, as for `summary_table`.
        epochs_df: the epoch frame.
        threshold: the val_acc of the `epoch` column.

    Returns:
        Numbers, not text (`format_post` writes them as the post does). `epoch`,
        `acc_val` and `acc` are at the threshold when `threshold_reached`, else at the
        highest 0.01 level the run reached (the post's `(47)`).
    """
    metrics = metrics_frame(runs_df, epochs_df, threshold=threshold, thresholds=())
    summary = _summary(runs_df, metrics).set_axis(runs_df.index)
    table = pd.DataFrame(
        {
            header: metrics[_POST_METRICS[header]] if header in _POST_METRICS else summary[name]
            for name, header in post_headers().items()
        },
        index=runs_df.index,
    )
    table[REACHED] = metrics["threshold_reached"]
    return table.reset_index(drop=True)


def raw_table(
    runs_df: pd.DataFrame,
    epochs_df: pd.DataFrame,
    threshold: float = DEFAULT_THRESHOLD,
    thresholds: Iterable[float] = DEFAULT_THRESHOLDS,
    swing_start: int = DEFAULT_SWING_START,
) -> pd.DataFrame:
    """Every metric and setting of each run, named as `results.report.columns`
    defines them, full precision, in the order of `runs_df`; `val_loss_swing` and
    `val_acc_dip` skip the first `swing_start` epochs (`[report] swing_start`).

    The run columns (`study`, `label`, `trial_number`, `run_key`, `run_id`, `state`,
    `attempts`), the metrics (`results.report.columns.METRICS`: `threshold`,
    `threshold_epoch` (empty when never reached), …, `threshold_epoch_0_92`, …,
    `last_epoch`), `duration` (seconds from the first claim to the end),
    `train_seconds` (the epochs' seconds summed), then the run's record and every
    configuration value.
    """
    thresholds = tuple(thresholds)
    metrics = metrics_frame(
        runs_df, epochs_df, threshold=threshold, thresholds=thresholds, swing_start=swing_start
    )
    metrics.insert(0, "threshold", float(threshold))
    key = _join_key(runs_df, epochs_df)
    train_seconds = (
        epochs_df.groupby(key)["seconds"].sum(min_count=1) if len(epochs_df) else pd.Series(dtype="float64")
    )
    extra = pd.DataFrame(
        {
            "duration": _duration(runs_df),
            "train_seconds": runs_df[key].map(train_seconds).astype("float64"),
        },
        index=runs_df.index,
    )
    names = [c.name for c in METRICS]
    at = names.index("threshold_epoch_<t>")
    names[at : at + 1] = threshold_columns(thresholds)
    first = [name for name in _FIRST_RAW if name in runs_df.columns]
    rest = [name for name in runs_df.columns if name not in first]
    table = pd.concat([runs_df[first], metrics[names], extra, runs_df[rest]], axis=1)
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


# -- tables as text for reading ---------------------------------------------------


def format_loss(value: Any) -> str:
    """A loss as the post writes it: `0.0251`, and `2.5160e-04` below 0.001."""
    return format_value("loss", value)


def format_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Any table of the definition's columns as text, each column in its format
    (`results.report.columns`); missing values, and the threshold columns of a run
    that never reached the threshold, empty."""
    text = pd.DataFrame(index=table.index)
    for name in table.columns:
        text[name] = table[name].map(column(name).text).astype(object)
    return text


def format_post(table: pd.DataFrame, *, marks: bool = True) -> pd.DataFrame:
    """`post_table` as text, in the post's number formats.

    Args:
        table: `post_table`'s frame.
        marks: put a run that never reached the threshold in parentheses (`(47)`,
            `(0.91230)`) and drop `threshold_reached`; `False` keeps the plain numbers
            and the flag.
    """
    text = pd.DataFrame(index=table.index)
    reached = table[REACHED].astype(bool) if REACHED in table.columns else pd.Series(True, index=table.index)
    formats = {header: column(name).format for name, header in post_headers().items()}
    for header in POST_COLUMNS:
        # Object, not the column's dtype: an empty column keeps its numeric dtype.
        cells = table[header].map(lambda v, f=formats[header]: format_value(f, v)).astype(object)
        if marks and header in ("epoch", "acc_val", "acc"):
            cells = cells.where(reached | (cells == ""), "(" + cells + ")")
        text[header] = cells
    if not marks:
        text[REACHED] = reached
    return text


def is_post(frame: pd.DataFrame) -> bool:
    """Whether a frame is `post_table`'s."""
    return set(POST_COLUMNS) <= set(frame.columns) and REACHED in frame.columns


def as_text(frame: pd.DataFrame) -> pd.DataFrame:
    """A table as the terminal and the reading formats show it: the post's table in its
    formats, the summary in the definition's, anything else at full precision."""
    if is_post(frame):
        return format_post(frame)
    if set(frame.columns) <= set(SUMMARY):
        return format_summary(frame)
    return stringify(frame)


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


#: What tells apart the runs of one shared training (`shared_training_table`).
SHARED_TRAINING_COLUMNS = ("label", "ema_momentum", "epoch_best_ema", "val_acc_ema_best", "val_acc_ema_bn_best")


def shared_training_table(runs_df: pd.DataFrame) -> pd.DataFrame | None:
    """The runs that shared a training with another (they differ only in m or in what
    they measure, `RunConfig.training_key`), by the columns that tell them apart, as
    text in the columns' formats: the summary's columns are the same for each, the
    averages' are not. None when no two runs share one.

    Args:
        runs_df: the raw table (`config_json` and the columns above).
    """
    from results.report.frames import config_of
    from sweeps.config import training_key_of

    keys = pd.Series(
        [training_key_of(config_of(row)) for row in runs_df.to_dict("records")], index=runs_df.index, dtype="object"
    )
    shared = keys.notna() & keys.duplicated(keep=False)
    if not shared.any():
        return None
    table = pd.DataFrame({name: _column(runs_df, name)[shared] for name in SHARED_TRAINING_COLUMNS})
    return format_summary(table.reset_index(drop=True))
