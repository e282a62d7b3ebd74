"""`sweep status`: the studies in a storage, their runs by state, the best run so far,
and for a running study its current runs' epochs and an ETA.

A run left "running" by a worker that is gone shows as `interrupted`: it trains no
more, and the next `sweep run` or `sweep resume` continues it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import pandas as pd
from rich.console import Group
from rich.table import Table
from rich.text import Text
from sqlalchemy import func, select

from results.store.eta import (
    RunWork,
    eta_seconds,
    format_duration,
    run_seconds_left,
    run_seconds_per_epoch,
    study_seconds_per_epoch,
    timed_epochs,
)
from results.report.frames import config_of, read_study
from results.store import lifecycle
from results.store.lifecycle import Timing, is_interrupted
from results.store.models import EPOCHS, RUN_STATES, RUNS
from results.store.result_store import ResultStore
from results.report.tables import raw_table


#: The states as `status` shows them: "running" under a dead worker is "interrupted".
SHOWN_STATES = (*RUN_STATES, "interrupted")


def overview(store: ResultStore) -> Table:
    """One row per study: runs by state and the best run so far (two queries)."""
    counts: Sequence[Any] = []
    bests: Sequence[Any] = []
    if store.has_tables:
        counts, bests = _overview_rows(store)
    # Only the states some run is in: the table fits a terminal.
    shown = [state for state in SHOWN_STATES if any(row[1] == state for row in counts)]
    table = Table(title=f"Studies in {store.url.render_as_string(hide_password=True)}", header_style="bold")
    table.add_column("study", no_wrap=True)
    table.add_column("runs", justify="right")
    for state in shown:
        table.add_column(state, justify="right")
    table.add_column("best run")
    table.add_column("best val_acc", justify="right")
    by_study: dict[str, dict[str, int]] = {}
    for study, state, count in counts:
        by_study.setdefault(study, {})[state] = count
    best: dict[str, tuple[float, str]] = {}
    for study, label, val_acc in bests:
        if val_acc is not None and (study not in best or val_acc > best[study][0]):
            best[study] = (val_acc, label)
    for study in sorted(by_study):
        states = by_study[study]
        value, label = best.get(study, (math.nan, ""))
        table.add_row(
            study,
            str(sum(states.values())),
            *(str(states.get(s, "")) for s in shown),
            label,
            "" if math.isnan(value) else f"{value:.5f}",
        )
    return table


def _overview_rows(store: ResultStore) -> tuple[Sequence[Any], Sequence[Any]]:
    with store.engine.connect() as connection:
        counted = connection.execute(
            select(RUNS.c.study, RUNS.c.state, func.count())
            .where(RUNS.c.state != "running")
            .group_by(RUNS.c.study, RUNS.c.state)
        ).all()
        running = connection.execute(
            select(RUNS.c.study, RUNS.c.state, RUNS.c.worker, RUNS.c.heartbeat_at).where(RUNS.c.state == "running")
        ).all()
        bests = connection.execute(
            select(RUNS.c.study, RUNS.c.label, func.max(EPOCHS.c.val_acc))
            .join_from(EPOCHS, RUNS, EPOCHS.c.run_id == RUNS.c.id)
            .group_by(RUNS.c.id, RUNS.c.study, RUNS.c.label)
        ).all()
    now, grace = store.now(), Timing.from_env().grace_period
    tally: dict[tuple[str, str], int] = {(study, state): count for study, state, count in counted}
    for row in running:
        state = "interrupted" if is_interrupted(dict(row._mapping), now, grace) else "running"
        tally[row.study, state] = tally.get((row.study, state), 0) + 1
    counts = [(study, state, count) for (study, state), count in sorted(tally.items())]
    return counts, bests


def study_status(
    store: ResultStore, study: str, *, threshold: float, now: datetime | None = None, storage: str | None = None
) -> Group:
    """A study's runs by state, its best run, and its running runs with an ETA.

    The ETA assumes the running workers go on at the study's mean seconds per epoch
    through the epochs left of the running and waiting runs. A study that is not done
    and has nobody training it ends with the command that continues it.

    Args:
        storage: the storage URL as the user gave it, for the commands shown.
    """
    now = now or store.now()
    runs, epochs = read_study(store, study)
    raw = raw_table(runs, epochs, threshold=threshold)
    if len(raw):
        grace = Timing.from_env().grace_period
        gone = [is_interrupted(row, now, grace) for row in raw[["state", "worker", "heartbeat_at"]].to_dict("records")]
        raw.loc[gone, "state"] = "interrupted"
    states = raw["state"].value_counts()
    shown = [state for state in SHOWN_STATES if states.get(state)]
    summary = Table(title=f"Study {study}", header_style="bold")
    for column in ("runs", *shown):
        summary.add_column(column, justify="right")
    summary.add_row(str(len(raw)), *(str(states[s]) for s in shown))
    parts: list[Any] = [summary]

    if raw["val_acc_best"].notna().any():
        top = raw.loc[raw["val_acc_best"].idxmax()]
        crossing = (
            f", val_acc ≥ {threshold:g} at epoch {top['threshold_epoch']}"
            if top["threshold_reached"]
            else f", never ≥ {threshold:g}"
        )
        parts.append(
            Text(
                f"Best run so far: {top['label']} — val_acc {top['val_acc_best']:.5f} at epoch "
                f"{top['epoch_best']}{crossing}"
            )
        )

    running = raw[raw["state"] == "running"]
    if len(running):
        parts.extend(_running(raw, running, epochs, now))
    hint = next_step(study, dict(states), storage)
    if hint:
        parts.append(Text(hint))
    return Group(*parts)


def next_step(study: str, states: dict[str, int], storage: str | None = None) -> str | None:
    """The command that continues a study that is not done, or None.

    Failed runs are handed out again only while they have retries left, and never
    after an input error: `sweep retry` resets them, then `sweep resume` trains them.
    """
    where = f" --storage {storage}" if storage else ""
    resume = f"sweep resume {study}{where}"
    if states.get("failed"):
        return (f"{states['failed']} run(s) failed: fix the cause (see their reasons in "
                f"`sweep export {study} --style raw{where}`), then `sweep retry {study} --failed{where}` "
                f"and `{resume}`")
    if states.get("interrupted") or states.get("stopped") or (states.get("waiting") and not states.get("running")):
        return f"not done: continue with `{resume}`"
    return None


def _running(raw: pd.DataFrame, running: pd.DataFrame, epochs: pd.DataFrame, now: datetime) -> list[Any]:
    """The running runs' table and the study's ETA (`results.store.eta`'s rule, which the
    live progress of `sweep run` shows too)."""
    timed = (
        {run_id: timed_epochs(seconds) for run_id, seconds in epochs.groupby("run_id")["seconds"]}
        if len(epochs) else {}
    )
    work: dict[Any, RunWork] = {}
    for row in raw.to_dict("records"):
        done = 0 if pd.isna(row["last_epoch"]) else int(row["last_epoch"])
        left = lifecycle.epochs_left({"state": row["state"], "config": {"epochs": _planned_epochs(row)}}, done)
        work[row["run_id"]] = RunWork(left, *timed.get(row["run_id"], (0.0, 0)))
    study_mean = study_seconds_per_epoch(list(work.values()))
    last = epochs.groupby("run_id").tail(1).set_index("run_id") if len(epochs) else pd.DataFrame()
    table = Table(title="Running", header_style="bold")
    table.add_column("run", no_wrap=True)
    table.add_column("worker@host", overflow="fold")
    # Workers started by `sweep submit`: the Slurm job array task (`squeue`'s JOBID).
    slurm = "slurm_job" in running and running["slurm_job"].notna().any()
    if slurm:
        table.add_column("slurm job", no_wrap=True)
    for column in ("epoch", "val_acc", "best", "s/epoch", "seen", "left"):
        table.add_column(column, justify="right", no_wrap=True)
    for row in running.to_dict("records"):
        run = work[row["run_id"]]
        done = 0 if pd.isna(row["last_epoch"]) else int(row["last_epoch"])
        speed = run_seconds_per_epoch(run, study_mean)
        heartbeat = row["heartbeat_at"]
        val_acc = last.loc[row["run_id"], "val_acc"] if row["run_id"] in last.index else math.nan
        table.add_row(
            str(row["label"]),
            f"{row['worker'] or '?'}@{row['host'] or '?'}",
            *([row["slurm_job"] if isinstance(row["slurm_job"], str) else ""] if slurm else []),
            f"{done}/{_planned_epochs(row) or '?'}",
            "" if pd.isna(val_acc) else f"{val_acc:.4f}",
            "" if pd.isna(row["val_acc_best"]) else f"{row['val_acc_best']:.4f}",
            "" if speed is None else f"{speed:.1f}",
            "" if pd.isna(heartbeat) else format_duration((now - heartbeat).total_seconds()) + " ago",
            format_duration(run_seconds_left(run, study_mean)),
        )
    epochs_left = sum(run.epochs_left for run in work.values())
    eta = eta_seconds(list(work.values()), len(running))
    summary = (
        f"ETA {format_duration(eta)}: {epochs_left} epochs left, {len(running)} running"
        if eta is not None
        else f"ETA unknown: {epochs_left} epochs left, no epoch timed yet"
    )
    return [table, Text(summary)]


def _planned_epochs(row: dict[str, Any]) -> int | None:
    config = config_of(row) or {}
    epochs = config.get("epochs")
    return int(epochs) if isinstance(epochs, (int, float)) else None
