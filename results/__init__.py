"""Results of sweeps: every epoch of every run, next to the Optuna study, as the post's
tables, CSV and plots.

`import results` stays light: pandas, SQLAlchemy and matplotlib load on first use.

    >>> import results
    >>> runs = results.load("sqlite:///sweeps.db", "post_table1")       # one row per run
    >>> epochs = results.load_epochs("sqlite:///sweeps.db", "post_table1")  # per run and epoch
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

    from results.store.storage_url import StorageUrl

__all__ = ["load", "load_epochs"]


def load(
    storage: str | StorageUrl,
    study: str,
    *,
    threshold: float | None = None,
    thresholds: Iterable[float] | None = None,
    sort: str = "file",
    swing_start: int | None = None,
) -> pd.DataFrame:
    """A study's runs, one row each: label, the metrics, the configuration flattened.

    The raw table (`results.report.tables.raw_table`), its columns named as the
    README's glossary and `results.report.columns` name them: run columns (`study`,
    `label`, `trial_number`, `run_key`, `run_id`, `state`, `attempts`), the metrics
    (`threshold_epoch`, empty for a run that never reached the threshold,
    `val_acc_at_threshold`, `epoch_best`, `val_acc_best`, `loss_min`,
    `threshold_epoch_0_92`, …, `delta_val_loss` (the fluctuation amplitude), …,
    `weight_norm_final`), timing, then every configuration value (`weight_decay`,
    `learning_rate`, …, `lr_schedule`), in the sweep file's order of runs.

    The columns' old names (`acc_val`, `reached`, `final_loss`, `epochs_to_0_92`, …)
    still read, with a DeprecationWarning, until the next version
    (`results.report.renamed.RunFrame`).

    Args:
        storage: the database URL.
        study: the study's name.
        threshold: the val_acc of `threshold_epoch`; default the study's own, else 0.92.
        thresholds: the thresholds of the `epochs_to_*` columns; default the study's
            own, else 0.92 and 0.93.
        sort: the order of the runs: `file` (the sweep file's), `label` (the post's),
            or a column (`results.report.tables.SORTS`).
        swing_start: the start-up epochs `val_loss_swing` and `val_acc_dip` skip;
            default the study's own (`[report] swing_start`), else 5.

    Raises:
        sweeps.errors.InputError: a bad URL, an unknown study or a negative `swing_start`.
    """
    from results.report.commands import open_store, require_study
    from results.report.frames import read_study
    from results.report.study_settings import report_settings
    from results.report.tables import raw_table, sort_runs

    if swing_start is not None and swing_start < 0:
        from sweeps.errors import InputError

        raise InputError(f"swing_start {swing_start}: must be a number of epochs, 0 or more, e.g. 5")
    with open_store(storage) as store:
        require_study(store, study)
        own = report_settings(store, study)
        runs, epochs = read_study(store, study)
    threshold = own.threshold if threshold is None else threshold
    thresholds = own.thresholds if thresholds is None else tuple(thresholds)
    swing_start = own.swing_start if swing_start is None else swing_start
    try:
        runs = sort_runs(runs, epochs, sort, threshold)
    except ValueError as error:
        from sweeps.errors import InputError

        raise InputError(str(error)) from None
    from results.report.renamed import RunFrame

    return RunFrame(raw_table(runs, epochs, threshold, thresholds, swing_start))


def load_epochs(storage: str | StorageUrl, study: str) -> pd.DataFrame:
    """A study's epochs, one row per run and epoch: `run_id`, `label`, `run_key`,
    `trial_number`, `epoch`, `loss`, `acc`, `val_loss`, `val_acc`, `lr`, `seconds`,
    `images_per_second`, `val_loss_ema`, `val_acc_ema`, `test_loss`, `test_acc`,
    `weight_norm`, `weight_norm_stage1`, `weight_norm_stage2`, `weight_norm_stage3`,
    `effective_lr`, `angular_update` (NaN where not measured); in the runs' order,
    then by epoch.

    Raises:
        sweeps.errors.InputError: a bad URL or an unknown study.
    """
    from results.report.commands import open_store, require_study
    from results.report.frames import read_study

    with open_store(storage) as store:
        require_study(store, study)
        _, epochs = read_study(store, study)
    return epochs
