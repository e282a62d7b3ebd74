"""What a study's report shows, read in one go: the runs, their epochs, the sweep file
and where and when it ran.

Everything comes from the database: the results tables (two queries) and the Optuna
study's user attributes, where `sweep run` keeps the sweep file as written.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd

from results.store.engine import safe_url
from results.store.lifecycle import is_unfinished
from results.store.models import RUN_STATES, utcnow
from results.report.importance import Importances
from results.store.result_store import ResultStore


@dataclass
class StudyData:
    """One study as its report shows it.

    Args:
        study: the study's name.
        storage: the database URL, password hidden.
        runs: the raw table (`results.load`), in label order.
        table: the summary (`results.report.tables.summary_table`), row for row with `runs`.
        epochs: the epoch table (`results.load_epochs`).
        threshold: the val_acc of `threshold_epoch`.
        thresholds: the levels drawn on the accuracy plots, the first solid.
        sweep_text: the sweep file as written (empty if the study was not made by
            `sweep run`).
        sweep_path: where it was read from.
        importances: Optuna's importances, for a `[search]` study.
        written: when the report was made.
    """

    study: str
    storage: str
    runs: pd.DataFrame
    table: pd.DataFrame
    epochs: pd.DataFrame
    threshold: float
    thresholds: tuple[float, ...]
    sweep_text: str = ""
    sweep_path: str = ""
    importances: Importances | None = None
    written: datetime = field(default_factory=utcnow)

    @property
    def sweep(self) -> dict[str, Any]:
        """The sweep file parsed as TOML; empty when there is none or it does not parse."""
        try:
            return tomllib.loads(self.sweep_text) if self.sweep_text else {}
        except tomllib.TOMLDecodeError:
            return {}

    @property
    def description(self) -> str:
        value = self.sweep.get("description", "")
        return value if isinstance(value, str) else ""

    @property
    def is_search(self) -> bool:
        return isinstance(self.sweep.get("search"), dict)

    def states(self) -> dict[str, int]:
        """Runs by state, in the store's order of states, only those present."""
        counts = self.runs["state"].value_counts() if len(self.runs) else pd.Series(dtype=int)
        return {state: int(counts[state]) for state in RUN_STATES if state in counts.index}

    @property
    def running(self) -> bool:
        """Whether the study is not done: some run is unfinished (`lifecycle.is_unfinished`,
        the rule `sweep status` and the ETA use)."""
        return any(is_unfinished(state) for state in self.states())

    def distinct(self, column: str) -> list[str]:
        """The distinct non-empty values of a run column, as text, in run order."""
        if column not in self.runs.columns:
            return []
        return list(dict.fromkeys(str(v) for v in self.runs[column] if isinstance(v, str) and v))

    def versions(self) -> list[str]:
        """Each distinct set of versions the runs report, as `keras 3.15.1, tensorflow 2.21.0`."""
        shown = []
        for text in self.distinct("versions"):
            try:
                versions = json.loads(text)
            except json.JSONDecodeError:
                shown.append(text)
                continue
            # `keras 3.15.1, tensorflow 2.21.0`: the backend by its name; the device has its own line.
            parts = [f"{k} {v}" for k, v in versions.items() if k not in ("device", "backend", "backend_version")]
            if versions.get("backend"):
                parts.append(f"{versions['backend']} {versions.get('backend_version', '')}".strip())
            shown.append(", ".join(parts))
        return list(dict.fromkeys(shown))


def read_study_data(store: ResultStore, study: str, *, importances: bool = True) -> StudyData:
    """A study's report data from its store.

    Args:
        store: an open store of the study's database.
        study: the study's name (checked by the caller).
        importances: compute Optuna's importances for a `[search]` study.
    """
    from results.report.frames import read_study
    from results.report.study_settings import report_settings, study_user_attrs
    from results.report.tables import raw_table, summary_table

    attrs = study_user_attrs(store, study)
    settings = report_settings(store, study)
    threshold, thresholds = settings.threshold, settings.thresholds
    run_frame, epochs = read_study(store, study)
    data = StudyData(
        study=study,
        storage=safe_url(store.url),
        runs=raw_table(run_frame, epochs, threshold, thresholds, settings.swing_start),
        table=summary_table(run_frame, epochs, threshold),
        epochs=epochs,
        threshold=threshold,
        thresholds=tuple(dict.fromkeys((threshold, *thresholds))),
        sweep_text=attrs.get("sweep_file") if isinstance(attrs.get("sweep_file"), str) else "",
        sweep_path=str(attrs.get("sweep_path", "")),
    )
    if importances and data.is_search:
        from results.report.importance import param_importances

        objectives = (data.sweep.get("study") or {}).get("objectives") or ["val_acc"]
        data.importances = param_importances(store, study, str(objectives[0]))
    return data
