"""A study's runs and epochs as pandas DataFrames, read with two queries.

An export reads a whole study at once: one query for its runs, one for all their
epochs, whatever the number of runs. The run frame carries each run's configuration
flattened into columns (`weight_decay`, `learning_rate`, …) and the post's
`lr_schedule` (its reduction model); the epoch frame one row per run and epoch.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import select

from results.store.models import EPOCH_FIELDS, EPOCHS, RUNS
from results.store.result_store import ResultStore
from sweeps.config import RunConfig
from sweeps.notation import format_schedule

#: The run columns of the run frame, before the configuration's.
RUN_COLUMNS = (
    "run_id",
    "study",
    "label",
    "trial_number",
    "run_key",
    "state",
    "attempts",
    "comment",
    "failure_reason",
    "worker",
    "host",
    "heartbeat_at",
    "slurm_job",
    "device",
    "versions",
    "registered",
    "started",
    "finished",
    "config_json",
)
#: The columns of the epoch frame.
EPOCH_COLUMNS = ("run_id", "label", "run_key", "trial_number", *EPOCH_FIELDS)
_DATETIMES = ("heartbeat_at", "registered", "started", "finished")


def reduction_model(config: dict[str, Any]) -> str:
    """The post's `reduction model` of a stored configuration, in learning rates; empty
    for a run whose configuration is not known yet (a search trial not yet asked)."""
    if not config:
        return ""
    try:
        return RunConfig.model_validate(config).schedule_notation()
    except ValueError:
        # A configuration this version no longer validates: write it from its parts.
        alpha = float(config.get("learning_rate") or 0.0)
        schedule = config.get("schedule")
        if not schedule:
            return format_schedule([(alpha, 0)]) if alpha else ""
        scale = alpha if schedule.get("relative") else 1.0
        return format_schedule([(float(v) * scale, float(e)) for v, e in schedule["breakpoints"]])


def flatten_config(config: dict[str, Any], notations: dict[str, str] | None = None) -> dict[str, Any]:
    """A stored configuration as flat columns.

    Scalars stay as they are; the schedule becomes its notation as written
    (`schedule`, factors η when `schedule_relative`) and `lr_schedule` the
    schedule in learning rates (the post's reduction model); lists and other nested values become JSON text.

    Args:
        config: a stored configuration (empty for a search trial not yet asked).
        notations: reduction models already written, by (α, schedule), shared across
            the runs of one read: validating a RunConfig per run is a tenth of an
            export of 1,000 runs, and a sweep's runs share a few (α, schedule) pairs.
    """
    flat: dict[str, Any] = {}
    for key, value in config.items():
        if key == "schedule":
            flat["schedule"] = format_schedule(value["breakpoints"]) if value else ""
            flat["schedule_relative"] = bool(value and value.get("relative"))
        elif isinstance(value, (list, tuple, dict)):
            flat[key] = json.dumps(value, separators=(",", ":"))
        else:
            flat[key] = value
    if notations is None or not config:
        flat["lr_schedule"] = reduction_model(config)
        return flat
    key = json.dumps([config.get("learning_rate"), config.get("schedule")], sort_keys=True)
    if key not in notations:
        notations[key] = reduction_model(config)
    flat["lr_schedule"] = notations[key]
    return flat


def config_of(row: dict[str, Any]) -> dict[str, Any] | None:
    """The stored configuration of a run-frame row (its `config_json`), if any."""
    text = row.get("config_json")
    return json.loads(text) if isinstance(text, str) and text else None


def _runs_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    records, notations = [], {}
    for row in rows:
        record = {"run_id": row["id"], **{name: row[name] for name in RUN_COLUMNS[1:-1]}}
        record["versions"] = json.dumps(row["versions"], sort_keys=True) if row["versions"] else ""
        record["config_json"] = json.dumps(row["config"], sort_keys=True)
        record.update(flatten_config(row["config"], notations))
        records.append(record)
    frame = pd.DataFrame.from_records(records, columns=_columns(records))
    for name in _DATETIMES:
        frame[name] = pd.to_datetime(frame[name], utc=True)
    for name in ("run_id", "attempts"):
        frame[name] = frame[name].astype("int64")
    frame["trial_number"] = frame["trial_number"].astype("Int64")
    return frame


def _columns(records: list[dict[str, Any]]) -> list[str]:
    """The run columns, then every configuration key in first-seen order."""
    seen = dict.fromkeys(RUN_COLUMNS)
    for record in records:
        seen.update(dict.fromkeys(record))
    return list(seen)


def read_study(store: ResultStore, study: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A study's run frame and epoch frame, in the file's order, with two queries.

    The file's order is the order the sweep registered its runs: its `[[runs]]` as
    written, a grid in grid order, search trials by number (`tables.sort_runs`
    offers others).

    Returns:
        `(runs, epochs)`: `runs` has `RUN_COLUMNS` then the flattened configuration;
        `epochs` has `EPOCH_COLUMNS`, in the runs' order then by epoch.
    """
    if not store.has_tables:
        return _runs_frame([]), pd.DataFrame(columns=list(EPOCH_COLUMNS))
    epoch_columns = [EPOCHS.c[name] for name in ("run_id", *EPOCH_FIELDS)]
    with store.engine.connect() as connection:
        run_rows = [
            dict(row._mapping)
            for row in connection.execute(select(RUNS).where(RUNS.c.study == study).order_by(RUNS.c.id))
        ]
        epoch_rows = connection.execute(
            select(*epoch_columns)
            .join_from(EPOCHS, RUNS, EPOCHS.c.run_id == RUNS.c.id)
            .where(RUNS.c.study == study)
            .order_by(EPOCHS.c.run_id, EPOCHS.c.epoch)
        ).all()
    runs = _runs_frame(run_rows)
    # Column by column: DataFrame.from_records probes every Row for attributes, which
    # costs more than the query itself. NULL (None) becomes NaN in a float64 array.
    columns = list(zip(*epoch_rows, strict=True)) if epoch_rows else [()] * (1 + len(EPOCH_FIELDS))
    epochs = pd.DataFrame(
        {
            name: np.asarray(values, dtype=np.int64 if name in ("run_id", "epoch") else np.float64)
            for name, values in zip(("run_id", *EPOCH_FIELDS), columns, strict=True)
        }
    )
    return runs, order_epochs(runs, epochs)


def order_epochs(runs: pd.DataFrame, epochs: pd.DataFrame) -> pd.DataFrame:
    """The epoch frame with each run's label, run key and trial number, in the runs'
    order, then by epoch."""
    info = runs.set_index("run_id")[["label", "run_key", "trial_number"]]
    rank = pd.Series(range(len(runs)), index=runs["run_id"].to_numpy())
    epochs = epochs.join(info, on="run_id")
    epochs["_rank"] = epochs["run_id"].map(rank)
    epochs = epochs.sort_values(["_rank", "epoch"], kind="stable").drop(columns="_rank")
    return epochs[list(EPOCH_COLUMNS)].reset_index(drop=True)


def schedule_curve(
    config: dict[str, Any] | None, last_epoch: float, points: int = 241
) -> tuple[np.ndarray, np.ndarray] | None:
    """The configured LR over fractional epochs (to the later of the run's epochs and
    `last_epoch`), for plotting beside the recorded one; None when there is no
    configuration or it does not validate (a study made by another version)."""
    if not config:
        return None
    try:
        run = RunConfig.model_validate(config)
    except ValueError:
        return None
    x = np.linspace(0.0, max(float(run.epochs), last_epoch), points)
    return x, np.array([run.lr_at(float(e)) for e in x])
