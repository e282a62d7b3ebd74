"""`sweep report`: a study as one self-contained HTML page.

    >>> from results.report import write_report
    >>> write_report("sqlite:///sweeps.db", "quickstart", Path("quickstart.html"))

The page (`results.report_page`) is written whole or not at all: a temporary file in
the same folder, renamed over the old page, so that a browser reloading it while
`sweep run --report` rewrites it never reads half a page.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from results.outputs import refuse_file, write_output
from results.report_study import read_study_data
from results.store import ResultStore

SUFFIXES = (".html", ".htm")
#: How often a running study's page reloads itself.
RELOAD_SECONDS = 15


def default_output(study: str) -> Path:
    """`STUDY.html` in the current folder, the study's name made safe for a file name."""
    from results.plots import file_part

    return Path(f"{file_part(study)}.html")


def _database_files(storage: str) -> set[Path]:
    """The files of a SQLite storage (the database, its WAL and shared memory)."""
    try:
        url = make_url(storage)
    except ArgumentError:  # reported by the store, which checks the URL
        return set()
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return set()
    database = Path(url.database).resolve()
    return {database, Path(f"{database}-wal"), Path(f"{database}-shm"), Path(f"{database}-journal")}


def check_report_path(output: str, storage: str, *, flag: str = "--output") -> Path:
    """The page's path, checked before anything is read or written.

    Raises:
        ValueError: one line naming the flag and what is allowed: not an `.html` name,
            a folder, a missing folder, or the database itself.
    """
    path = Path(output)
    if path.suffix.lower() not in SUFFIXES:
        raise ValueError(f"{flag} {output}: must be an .html file (the page is written over it)")
    if path.is_dir():
        raise ValueError(f"{flag} {output}: is a folder; give a file name ending in .html")
    if not path.parent.is_dir():
        raise ValueError(f"{flag} {output}: folder {path.parent} does not exist")
    if path.resolve() in _database_files(storage):
        raise ValueError(f"{flag} {output}: is the study's database; give another file name")
    # Also: a link to a database, a FIFO, a read-only file or folder (InputError).
    refuse_file(path, flag=flag, protected=_database_files(storage))
    return path


def build_report(store: ResultStore, study: str, *, reload_seconds: int | None = None) -> str:
    """The page of a study, as text.

    Args:
        store: an open store of the study's database.
        study: the study's name (checked by the caller).
        reload_seconds: make the page reload itself this often (while the study runs).
    """
    from results.report_page import render_page

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
    """
    write_atomic(build_report(store, study, reload_seconds=RELOAD_SECONDS if live else None), path)
    return path


def write_atomic(text: str, path: Path) -> None:
    """Writes `path` whole or not at all: a temporary file beside it, renamed over it.

    The page gets the permissions of any file the user creates (the umask's), not a
    temporary file's 0600: it is meant to be shared; a link stays a link
    (`results.outputs.write_output`).
    """
    write_output(path, text)
