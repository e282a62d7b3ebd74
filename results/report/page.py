"""`sweep report`: a study as one self-contained HTML page.

    >>> from results.report import open_store
    >>> with open_store("sqlite:///sweeps.db") as store:
    ...     write_report(store, "quickstart", Path("quickstart.html"))

The page (`results.report.page_html`) is written whole or not at all
(`results.report.outputs.write_output`: a temporary file in the same folder, renamed over
the old page), so that a browser reloading it while `sweep run --report` rewrites it
never reads half a page.
"""

from __future__ import annotations

from pathlib import Path

from results.report.outputs import refuse_file, storage_files, write_output
from results.report.page_data import read_study_data
from results.store.result_store import ResultStore
from results.store.storage_url import StorageUrl
from sweeps.errors import InputError

SUFFIXES = (".html", ".htm")
#: How often a running study's page reloads itself.
RELOAD_SECONDS = 15


def default_output(study: str) -> Path:
    """`STUDY.html` in the current folder, the study's name made safe for a file name."""
    from results.report.plots import file_part

    return Path(f"{file_part(study)}.html")


def check_report_path(output: str, storage: str | StorageUrl, *, flag: str = "--output") -> Path:
    """The page's path, checked before anything is read or written.

    Besides what any output must not be (`results.report.outputs.refuse_file`: the storage
    database, another SQLite file, a folder, a special file, in a missing or read-only
    folder), the page must be named `.html`: it is written over, and a slip such as
    `--output sweeps/grid.toml` must not replace a sweep file.

    Returns:
        The file to write (a link's target).

    Raises:
        InputError: one line naming the flag, the path and what is allowed.
    """
    if Path(output).suffix.lower() not in SUFFIXES:
        raise InputError(f"{flag} {output}: must be an .html file (the page is written over it)")
    return refuse_file(output, flag=flag, protected=storage_files(storage))


def build_report(store: ResultStore, study: str, *, reload_seconds: int | None = None) -> str:
    """The page of a study, as text.

    Args:
        store: an open store of the study's database.
        study: the study's name (checked by the caller).
        reload_seconds: make the page reload itself this often (while the study runs).
    """
    from results.report.page_html import render_page

    return render_page(read_study_data(store, study), reload_seconds=reload_seconds)


def write_report(store: ResultStore, study: str, path: Path, *, live: bool = False) -> Path:
    """Writes a study's page atomically.

    Args:
        store: an open store of the study's database.
        study: the study's name.
        path: the page's file (checked with `check_report_path`).
        live: the study is still running: the page reloads itself every
            `RELOAD_SECONDS`; the final write passes False and the page stays put.

    Returns:
        The path written.

    Raises:
        OSError: the write failed; `FileExistsError` when the path became a database,
            a folder or a special file since its check (left as it is).
    """
    text = build_report(store, study, reload_seconds=RELOAD_SECONDS if live else None)
    return write_output(path, text)
