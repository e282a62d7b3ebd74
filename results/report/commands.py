"""`sweep export`, `sweep plot`, `sweep report` and `sweep status`: the command-line verbs of `results`.

Each checks all its input (storage URL, study, labels, output) before it writes
anything, and reports bad input as an `InputError`: one line, exit status 2.
"""

from __future__ import annotations

import sys

from results.store.engine import safe_url
from results.report.labels import select_runs
from results.report.outputs import refuse_file, refuse_folder, storage_files
from results.store.result_store import ResultStore
from results.store.storage_url import StorageUrl
from sweeps.errors import InputError, unknown_study
from sweeps.terminal import console as make_console


def open_store(storage: str | StorageUrl) -> ResultStore:
    """The store of an existing database, for reading: nothing is created or written."""
    return ResultStore(storage, create=False, read_only=True)


def require_study(store: ResultStore, study: str) -> None:
    """Raises `InputError` naming an unknown study and the storage's studies."""
    studies = store.studies()
    if study not in studies:
        raise unknown_study(study, safe_url(store.url), studies)


def export_command(
    study: str,
    *,
    storage: str,
    format: str | None = None,
    style: str = "summary",
    output: str | None = None,
    threshold: float | None = None,
    epochs: bool = False,
    sort: str = "file",
    swing_start: int | None = None,
) -> int:
    """Writes a study's table (or with `epochs` its per-epoch table) to `output` or stdout.

    Args:
        study: the study's name.
        storage: the database URL.
        format: `csv`, `md`, `html`, `latex` or `json`; None: to a terminal the table
            fitted to its width (`results.report.terminal`), else `md`.
        style: `summary` (the post's columns by their names), `post` (the post's
            headers and number formats, for md, html and latex) or `raw` (every
            metric and setting, full precision).
        output: a file to write; stdout when None.
        threshold: the val_acc of `threshold_epoch`; None: the study's own
            (`[report] threshold`), else 0.92.
        epochs: the long per-epoch table of every run instead (full precision,
            whatever the style).
        sort: the runs' order: `file` (the sweep file's), `label` (the post's) or a
            column (`results.report.tables.SORTS`).
        swing_start: the start-up epochs `val_loss_swing` and `val_acc_dip` skip (the
            raw table); None: the study's own (`[report] swing_start`), else 5.

    Returns:
        0.
    """
    from results.report.export import (
        FORMATS,
        READING,
        STYLES,
        check_output,
        frame_text,
        post_text,
        summary_text,
        write_text,
    )

    if format is not None and format not in FORMATS:
        raise InputError(f"--format {format}: must be one of {', '.join(FORMATS)}")
    if style not in STYLES:
        raise InputError(f"--style {style}: must be one of {', '.join(STYLES)}")
    if style == "post" and format not in (None, *READING) and not epochs:
        raise InputError(
            f"--style post --format {format}: the post's headers (spaces, λ, α) are for "
            f"{', '.join(READING)}; {format} has the same columns named: --style summary"
        )
    from results.report.tables import SORTS

    if sort not in SORTS:
        raise InputError(f"--sort {sort}: must be one of {', '.join(SORTS)}")
    if threshold is not None and not 0 < threshold <= 1:
        raise InputError(f"--threshold {threshold:g}: must be a val_acc above 0 and at most 1, e.g. 0.92")
    if swing_start is not None and swing_start < 0:
        raise InputError(f"--swing-start {swing_start}: must be a number of epochs, 0 or more, e.g. 5")
    storage = StorageUrl.parse(storage)  # checked once, for each use below
    path = check_output(output, protected=storage_files(storage))
    fit = format is None and path is None and sys.stdout.isatty()

    from results.report.frames import read_study
    from results.report.study_settings import report_settings
    from results.report.tables import epochs_table, post_table, raw_table, sort_runs, summary_table

    with open_store(storage) as store:
        require_study(store, study)
        own = report_settings(store, study)
        runs, epoch_rows = read_study(store, study)
    threshold = own.threshold if threshold is None else threshold
    swing_start = own.swing_start if swing_start is None else swing_start
    runs = sort_runs(runs, epoch_rows, sort, threshold)
    if epochs:
        table = epochs_table(runs, epoch_rows)
    elif style == "summary":
        table = summary_table(runs, epoch_rows, threshold)
    elif style == "post":
        table = post_table(runs, epoch_rows, threshold)
    else:
        table = raw_table(runs, epoch_rows, threshold, own.thresholds, swing_start)
    if fit:
        from results.report.terminal import print_fitted

        print_fitted(table, study=study)
        return 0
    format = format or "md"
    if epochs or style == "raw":
        text = frame_text(table, format)
    else:
        text = (summary_text if style == "summary" else post_text)(table, format)
    write_text(text, path)
    return 0


def plot_command(
    study: str, *, storage: str, runs: list[str] | None = None, output: str = "plots", log: bool = False
) -> int:
    """Writes the post's plots of a study as PNGs into the folder `output`.

    Args:
        study: the study's name.
        storage: the database URL.
        runs: the labels (or run keys) of the runs to draw one by one (default: all); the study's
            heatmaps and val_loss overlay show every run.
        output: the folder (created when missing).
        log: losses on a log scale.

    Returns:
        0.
    """
    storage = StorageUrl.parse(storage)  # checked once, for each use below
    protected = storage_files(storage)
    folder = refuse_folder(output, protected=protected)

    from results.report.frames import read_study
    from results.report.study_settings import report_settings
    from results.report.tables import raw_table

    with open_store(storage) as store:
        require_study(store, study)
        settings = report_settings(store, study)
        run_frame, epochs = read_study(store, study)
    if runs is not None:
        chosen = select_runs(runs, run_frame[["label", "run_key"]].to_dict("records"), study)
        runs = [str(run["label"]) for run in chosen]

    from results.report.plots import file_part, write_plots

    if folder.is_dir():  # the plots replace files of this study's names only: check those
        for path in sorted(folder.glob(f"{file_part(study)}-*.png")):
            refuse_file(path, protected=protected)
    raw = raw_table(run_frame, epochs, settings.threshold, settings.thresholds, settings.swing_start)
    folder.mkdir(parents=True, exist_ok=True)
    written = write_plots(study, raw, epochs, folder, labels=runs, log=log)
    names = [path.name for path in written]
    if len(names) > 5:  # a study of many runs: the first and the study's own
        names = [*names[:3], "…", *names[-2:]]
    print(f"wrote {len(written)} plots to {folder}/: {', '.join(names)}")
    return 0


def report_command(study: str, *, storage: str, output: str | None = None) -> int:
    """Writes a study's report, one self-contained HTML page, and prints its path.

    Args:
        study: the study's name.
        storage: the database URL.
        output: the page's file (`.html`); default `STUDY.html` in the current folder.

    Returns:
        0.
    """
    from results.report.page import check_report_path, default_output, write_report

    path = check_report_path(output or str(default_output(study)), storage)
    with open_store(storage) as store:
        require_study(store, study)
        written = write_report(store, study, path)
    print(f"wrote the report of {study} to {written}")
    return 0


def status_command(study: str | None, *, storage: str) -> int:
    """Prints the studies in a storage, or one study's runs, best run and ETA.

    Returns:
        0.
    """
    from results.report.status import overview, study_status
    from results.report.study_settings import report_settings

    console = make_console()
    with open_store(storage) as store:
        if study is None:
            console.print(overview(store))
            return 0
        require_study(store, study)
        threshold = report_settings(store, study).threshold
        console.print(study_status(store, study, threshold=threshold, storage=safe_url(store.url)))
    return 0
