"""Engines for the results store's database URL: check a URL, open it (read-only or
not), and tell a locked SQLite database from other errors.

Both `results.store.result_store` and `results.store.schema` open engines here, so that neither imports
the other.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import time
from pathlib import Path
from typing import Any
from urllib.request import pathname2url

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.pool import NullPool
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, OperationalError

from sweeps.errors import InputError

ALLOWED_URLS = "sqlite:///FILE.db or postgresql+psycopg://USER[:PASSWORD]@HOST[:PORT]/DATABASE"
#: Seconds a SQLite connection waits for another writer before "database is locked".
BUSY_TIMEOUT = 30.0
def safe_url(url: str | URL) -> str:
    """The URL as it may appear in a message: the password hidden."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return str(url)


def sqlite_file(url: str | URL) -> Path | None:
    """The database file of a SQLite URL; None for a server or an in-memory database."""
    parsed = make_url(url)
    database = parsed.database or ""
    if parsed.get_backend_name() != "sqlite" or database in ("", ":memory:") or database.startswith("file:"):
        return None
    return Path(database)


def check_url(url: str, *, must_exist: bool = False) -> URL:
    """Parses a storage URL and checks that it is one the store supports.

    A SQLite file that exists must be a SQLite database: an empty file, a FIFO or any
    other file is refused before SQLite would turn it into an empty database.

    Args:
        url: `sqlite:///FILE.db` or `postgresql+psycopg://…`. An in-memory SQLite
            database (`sqlite://`) is refused: the workers could not share it.
        must_exist: a SQLite file must already be there (the read-only commands must
            not leave an empty database behind a typo).

    Raises:
        InputError: naming the URL and what is allowed.
    """
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise InputError(f"--storage {url!r}: not a database URL; use {ALLOWED_URLS}") from None
    backend, driver = parsed.get_backend_name(), parsed.get_driver_name()
    shown = safe_url(parsed)
    if backend == "sqlite" and driver == "pysqlite":
        database = parsed.database or ""
        if database in ("", ":memory:") or "mode=memory" in database or database.startswith("file::memory:"):
            raise InputError(
                f"--storage {shown}: an in-memory database cannot be shared with the workers "
                "(each process would see its own, empty one); use sqlite:///FILE.db"
            )
        if database.startswith("file:"):
            raise InputError(
                f"--storage {shown}: SQLite URI file names (file:…) are not supported; use sqlite:///FILE.db"
            )
        path = sqlite_file(parsed)
        if path is not None:
            _check_sqlite_file(path, shown, must_exist=must_exist)
        return parsed
    if backend == "postgresql":
        if parsed.drivername == "postgresql":
            # The default driver differs by SQLAlchemy version (psycopg2 before 2.1);
            # psycopg 3 is the one installed.
            parsed = parsed.set(drivername="postgresql+psycopg")
        elif driver != "psycopg":
            raise InputError(
                f"--storage {shown}: the PostgreSQL driver must be psycopg (version 3): "
                f"write postgresql+psycopg://…"
            )
        if not parsed.database:
            raise InputError(f"--storage {shown}: no database name; use {ALLOWED_URLS}")
        return parsed
    raise InputError(f"--storage {shown}: {parsed.drivername} is not supported; use {ALLOWED_URLS}")


def _stays_empty(path: Path, wait: float = 1.0) -> bool:
    """Whether the file is empty, and stays so for `wait` seconds: another `sweep run`
    started at the same moment may just have created it, and writes its header at
    once."""
    deadline = time.monotonic() + wait
    while path.stat().st_size == 0:
        if time.monotonic() > deadline:
            return True
        time.sleep(0.05)
    return False


def _is_sqlite_database(path: Path) -> bool:
    """Whether SQLite takes the file for a database, asked of SQLite itself.

    Not `open()` and a look at the header: POSIX locks belong to the process, and
    closing any descriptor of the file drops every lock this process's SQLite
    connections hold on it. Another process's last connection then deletes the WAL
    those connections still read, and they see the database as it was, for ever (a
    `sweep run` front that never saw its runs change). SQLite's own opens keep the
    descriptor while a lock is held.
    """
    # Immutable: no lock, no -wal or -shm made or left; page 1 is all it reads.
    location = pathname2url(os.path.abspath(path))
    try:
        connection = sqlite3.connect(f"file:{location}?mode=ro&immutable=1", uri=True)
    except sqlite3.Error:
        return True  # it cannot be opened here: opening it for real says why
    try:
        connection.execute("PRAGMA schema_version").fetchone()
    except sqlite3.DatabaseError as error:
        return "not a database" not in str(error)
    finally:
        connection.close()
    return True


def _check_sqlite_file(path: Path, shown: str, *, must_exist: bool) -> None:
    if not path.parent.exists():
        raise InputError(f"--storage {shown}: folder {path.parent} does not exist")
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        if must_exist:
            raise InputError(
                f"--storage {shown}: no database file {path} (run a sweep first, or "
                f"give --storage the sweep's database)"
            ) from None
        return
    if stat.S_ISDIR(mode):
        raise InputError(f"--storage {shown}: {path} is a folder, not a database file")
    if not stat.S_ISREG(mode):
        raise InputError(f"--storage {shown}: {path} is not a plain file, not a database file")
    if not os.access(path, os.R_OK):
        raise InputError(f"--storage {shown}: cannot read {path}: permission denied")
    if _stays_empty(path):
        raise InputError(
            f"--storage {shown}: {path} is an empty file, not a database: remove it, or "
            "give --storage another file"
        )
    if not _is_sqlite_database(path):
        raise InputError(
            f"--storage {shown}: {path} is not a SQLite database (it does not begin with "
            "SQLite's header): give --storage the sweep's database"
        )


def check_writable(url: str | URL) -> None:
    """Checks that a SQLite database (or the folder it will be made in) can be written:
    SQLite keeps its journal (`-wal`, `-shm`) beside the database.

    Raises:
        InputError: naming the file or folder, and that reading commands still work.
    """
    path = sqlite_file(url)
    if path is None:
        return
    shown = safe_url(url)
    if path.exists() and not os.access(path, os.R_OK | os.W_OK):
        raise InputError(
            f"--storage {shown}: {path} is read-only; this command writes to it "
            "(`sweep export` and `sweep status` read it as it is): give a writable copy"
        )
    folder = path.parent
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InputError(
            f"--storage {shown}: folder {folder} is not writable, and SQLite keeps its "
            "journal beside the database: give a writable folder"
        )


def create_engine_for(url: str | URL, *, read_only: bool = False) -> Engine:
    """A SQLAlchemy engine for a checked storage URL.

    SQLite gets WAL (readers never block the writer), a busy timeout (writers queue
    instead of failing) and foreign keys on, on every connection; PostgreSQL gets a
    connection per transaction (`server_engine_kwargs`).

    Args:
        url: the checked URL.
        read_only: for the commands that only read: no write reaches the database
            (`query_only`, or SQLite's read-only mode when the file or its folder
            cannot be written) and its journal mode is left as it is.
    """
    parsed = make_url(url)
    if read_only:
        return create_engine(parsed, **read_only_engine_kwargs(parsed))
    if parsed.get_backend_name() != "sqlite":
        return create_engine(parsed, **server_engine_kwargs())
    engine = create_engine(parsed, connect_args={"timeout": BUSY_TIMEOUT})
    in_memory = parsed.database in (None, "", ":memory:")

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT * 1000)}")
            cursor.execute("PRAGMA foreign_keys = ON")
            if not in_memory:
                cursor.execute("PRAGMA journal_mode = WAL")
                # FULL, not NORMAL: an epoch's row must be on disk before its checkpoint
                # is, or a power loss could keep the checkpoint and lose the row for good.
                # One fsync per epoch or heartbeat is nothing next to an epoch.
                cursor.execute("PRAGMA synchronous = FULL")
        finally:
            cursor.close()

    return engine


def read_only_sqlite_uri(path: Path) -> str:
    """The `file:` URI that reads a SQLite database and leaves every file as it was.

    A database we may write (and its folder) is opened as usual: SQLite's last
    connection removes the `-wal` and `-shm` it made. One we may not write is opened in
    SQLite's read-only mode while a `-wal` beside it says a writer has it open; with no
    `-wal`, nobody has it open, and it is read as immutable, which needs no lock file.
    """
    location = pathname2url(os.path.abspath(path))
    if os.access(path, os.W_OK) and os.access(path.parent, os.W_OK | os.X_OK):
        return f"file:{location}?mode=rw"
    if Path(f"{path}-wal").exists():
        return f"file:{location}?mode=ro"
    return f"file:{location}?mode=ro&immutable=1"


def server_engine_kwargs() -> dict[str, Any]:
    """`create_engine` arguments for PostgreSQL (the results store's and Optuna's).

    No pool: a connection is opened for each transaction and closed after it, so that
    no connection is held at rest and 128 workers with their children fit a server's
    default `max_connections = 100` (each holds one only while it writes). It also
    makes a restarted server transparent: there is no stale pooled connection.
    `prepare_threshold=None`: no server-side prepared statements, which PgBouncer in
    transaction mode (1.18, Debian's) cannot keep across transactions.
    """
    return {"poolclass": NullPool, "connect_args": {"prepare_threshold": None}}


def read_only_engine_kwargs(url: str | URL) -> dict[str, Any]:
    """`create_engine` arguments that make an engine read-only (for Optuna's storage too).

    SQLite: `read_only_sqlite_uri` and `query_only`; PostgreSQL: read-only
    transactions.
    """
    parsed = make_url(url)
    path = sqlite_file(parsed)
    if path is None:
        server = server_engine_kwargs()
        return {**server, "connect_args": {**server["connect_args"], "options": "-c default_transaction_read_only=on"}}
    uri = read_only_sqlite_uri(path)

    def connect() -> sqlite3.Connection:
        connection = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT, check_same_thread=False)
        connection.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT * 1000)}")
        connection.execute("PRAGMA query_only = ON")
        return connection

    return {"creator": connect}


class DatabaseUnreachable(InputError):
    """A database server that refuses connections (down, restarting, unreachable):
    the commands a person runs stop with this one line and exit 2; workers wait."""


def unreachable(url: str | URL, error: OperationalError) -> DatabaseUnreachable:
    """The one-line error for a server that `error` says cannot be reached."""
    reason = str(error.orig).strip().splitlines()[0] if error.orig else str(error).splitlines()[0]
    return DatabaseUnreachable(f"--storage {safe_url(url)}: the database refuses connections: {reason}")


def check_reachable(url: Any) -> None:
    """Connects once to a server database (nothing to do for SQLite).

    Args:
        url: a URL, its text, or a checked `StorageUrl` (its `url`).

    Raises:
        DatabaseUnreachable: the server refuses connections.
    """
    parsed = url if isinstance(url, URL) else getattr(url, "url", None) or make_url(url)
    if sqlite_file(parsed) is not None or parsed.get_backend_name() == "sqlite":
        return
    engine = create_engine(parsed, **server_engine_kwargs())
    try:
        with engine.connect():
            pass
    except OperationalError as error:
        raise unreachable(parsed, error) from None
    finally:
        engine.dispose()


def is_locked(error: OperationalError) -> bool:
    """Whether an error is SQLite's "database is locked" (or "… table is locked")."""
    return "is locked" in str(error.orig)
