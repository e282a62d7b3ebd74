"""The results store: runs and their epochs, in the database that holds the Optuna study.

Every method is one short transaction, so that many workers on one SQLite file (or on
PostgreSQL) interleave without holding locks while they train. Claiming a run is one
conditional UPDATE: the database, not the workers, decides who trains what.
"""

from __future__ import annotations

import functools
import math
import os
import sqlite3
import stat
import time
from collections.abc import Callable, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar
from urllib.request import pathname2url

from sqlalchemy import Engine, create_engine, event, func, inspect, literal, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, IntegrityError, OperationalError

from results.models import EPOCH_FIELDS, EPOCHS, FINAL_STATES, REQUIRED_EPOCH_FIELDS, RUN_STATES, RUNS, utcnow
from results.schema import RESULT_TABLES, ensure_schema
from sweeps.errors import InputError

ALLOWED_URLS = "sqlite:///FILE.db or postgresql+psycopg://USER[:PASSWORD]@HOST[:PORT]/DATABASE"
#: Seconds a SQLite connection waits for another writer before "database is locked".
BUSY_TIMEOUT = 30.0
# On top of the busy timeout: SQLite answers some lock conflicts at once, without
# waiting (a reader that wants to write while another writer commits), so retry those.
_LOCK_RETRIES = 6
_LOCK_FIRST_DELAY = 0.05

_P = ParamSpec("_P")
_T = TypeVar("_T")

_METRICS = EPOCH_FIELDS[1:]


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
        if database in ("", ":memory:") or "mode=memory" in database:
            raise InputError(
                f"--storage {shown}: an in-memory database cannot be shared with the workers "
                "(each process would see its own, empty one); use sqlite:///FILE.db"
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


def _stays_empty(path: Path, wait: float = 3.0) -> bool:
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
    instead of failing) and foreign keys on, on every connection; PostgreSQL gets
    pre-ping, so that a worker that idled through a server restart reconnects.

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
        return create_engine(parsed, pool_pre_ping=True)
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


def read_only_engine_kwargs(url: str | URL) -> dict[str, Any]:
    """`create_engine` arguments that make an engine read-only (for Optuna's storage too).

    SQLite: `read_only_sqlite_uri` and `query_only`; PostgreSQL: read-only
    transactions.
    """
    parsed = make_url(url)
    path = sqlite_file(parsed)
    if path is None:
        return {"pool_pre_ping": True, "connect_args": {"options": "-c default_transaction_read_only=on"}}
    uri = read_only_sqlite_uri(path)

    def connect() -> sqlite3.Connection:
        connection = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT, check_same_thread=False)
        connection.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT * 1000)}")
        connection.execute("PRAGMA query_only = ON")
        return connection

    return {"creator": connect}


def is_locked(error: OperationalError) -> bool:
    """Whether an error is SQLite's "database is locked" (or "… table is locked")."""
    return "is locked" in str(error.orig)


def _retrying(
    method: Callable[Concatenate[ResultStore, _P], _T],
) -> Callable[Concatenate[ResultStore, _P], _T]:
    """Retries a store method briefly when SQLite reports a lock it did not wait for."""

    @functools.wraps(method)
    def wrapper(self: ResultStore, *args: _P.args, **kwargs: _P.kwargs) -> _T:
        delay = _LOCK_FIRST_DELAY
        for attempt in range(_LOCK_RETRIES):
            try:
                return method(self, *args, **kwargs)
            except OperationalError as error:
                if not is_locked(error) or attempt == _LOCK_RETRIES - 1:
                    raise
                time.sleep(delay)
                delay *= 2
        raise AssertionError("unreachable")

    return wrapper


def _number(value: Any) -> float | None:
    """A float for the database: NaN becomes NULL, as SQLite would store it anyway."""
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


def _refuse_plain_optuna(engine: Engine, url: URL) -> None:
    """A database with Optuna studies, none of them made by `sweep run` (which keeps
    its sweep file with the study), and no results tables was made by plain Optuna or
    another tool: its studies have no runs to show or continue.

    Raises:
        InputError: naming its studies.
    """
    with engine.connect() as connection:
        tables = set(inspect(connection).get_table_names())
    if "studies" not in tables or RESULT_TABLES & tables:
        return
    import optuna

    storage = optuna.storages.RDBStorage(
        url.render_as_string(hide_password=False),
        engine_kwargs=read_only_engine_kwargs(url),
        skip_table_creation=True,
        skip_compatibility_check=True,
    )
    try:
        studies = storage.get_all_studies()
    finally:
        storage.remove_session()
        storage.engine.dispose()
    if studies and not any("sweep_file" in study.user_attrs for study in studies):
        names = ", ".join(sorted(study.study_name for study in studies))
        raise InputError(
            f"--storage {safe_url(url)}: a database made by plain Optuna (its studies: {names}), "
            "not by `sweep run`; keras-sweep does not write into it: give --storage another database"
        )


def _check_tables(engine: Engine, url: URL) -> bool:
    """Whether the results tables are there, read without writing; a database of plain
    Optuna, or tables of another revision, are refused."""
    if ensure_schema(engine, create=False, url=safe_url(url)):
        return True
    _refuse_plain_optuna(engine, url)
    return False


class ResultStore:
    """Runs and per-epoch records of sweeps, kept next to the Optuna study.

    Args:
        url: the database URL: `sqlite:///sweeps.db` or
            `postgresql+psycopg://user@host:5432/sweeps`; the same URL as Optuna's
            storage.
        create: create the results tables when they are missing. `sweep resume` and
            `sweep worker` pass `False`: they neither create a database file nor tables.
        read_only: for the commands that only read (`export`, `plot`, `status`): the
            database must exist and is never written, not even its journal mode, so
            that a read-only copy can be read.

    Raises:
        InputError: a URL that is not SQLite or PostgreSQL through psycopg, a file that
            is not a database, a database made by plain Optuna, a read-only database
            (unless `read_only`), a database that cannot be opened, or results tables of another schema revision (with
            the command that migrates them).
    """

    def __init__(self, url: str, *, create: bool = True, read_only: bool = False) -> None:
        self.url = check_url(url, must_exist=not create or read_only)
        if not read_only:
            check_writable(self.url)
        self.read_only = read_only
        path = sqlite_file(self.url)
        try:
            if read_only:
                self.engine = create_engine_for(self.url, read_only=True)
                self.has_tables = _check_tables(self.engine, self.url)
            else:
                # Checked through a read-only engine first: a database that is refused
                # is left as it was, not even switched to WAL by a writing connection.
                self.has_tables = False
                if path is None or path.exists():
                    probe = create_engine_for(self.url, read_only=True)
                    try:
                        self.has_tables = _check_tables(probe, self.url)
                    finally:
                        probe.dispose()
                self.engine = create_engine_for(self.url)
                if not self.has_tables and create:
                    self.has_tables = ensure_schema(self.engine, create=True, url=safe_url(self.url))
        except OperationalError as error:
            if hasattr(self, "engine"):
                self.engine.dispose()
            reason = str(error.orig).strip().splitlines()[0] if error.orig else str(error)
            raise InputError(f"--storage {safe_url(self.url)}: cannot open the database: {reason}") from None
        except BaseException:
            if hasattr(self, "engine"):
                self.engine.dispose()
            raise
        self._insert = postgresql.insert if self.engine.dialect.name == "postgresql" else sqlite.insert

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Closes the store's connections."""
        self.engine.dispose()

    # -- writes --------------------------------------------------------------------

    @_retrying
    def register_run(
        self,
        study: str,
        run_key: str,
        *,
        label: str,
        comment: str | None,
        config: dict[str, Any],
        trial_number: int | None = None,
    ) -> int:
        """Adds a run in state "waiting", or finds the one already registered.

        Idempotent: a second registration of `(study, run_key)` changes nothing and
        returns the existing run's id.
        """
        statement = (
            self._insert(RUNS)
            .values(
                study=study,
                run_key=run_key,
                label=label,
                comment=comment or "",
                config=config,
                trial_number=trial_number,
                state="waiting",
                attempts=0,
                registered=utcnow(),
            )
            .on_conflict_do_nothing(index_elements=["study", "run_key"])
        )
        with self.engine.begin() as connection:
            connection.execute(statement)
            return connection.execute(
                select(RUNS.c.id).where(RUNS.c.study == study, RUNS.c.run_key == run_key)
            ).scalar_one()

    @_retrying
    def claim_run(
        self, run_id: int, *, worker: str, host: str, stale_after: float, max_attempts: int
    ) -> bool:
        """Takes a run for `worker` if nobody else trains it: one conditional UPDATE.

        The run is claimable when it is not final (complete, diverged, pruned), has
        attempts left if it failed or its worker died, and is not running, or runs with a heartbeat older than
        `stale_after` seconds (its worker died), or runs for this very worker (a
        restarted worker takes its own run back).

        Returns:
            Whether this worker now owns the run.
        """
        now = utcnow()
        statement = (
            update(RUNS)
            .where(
                RUNS.c.id == run_id,
                RUNS.c.state.not_in(FINAL_STATES),
                # Retries are counted for failures (a crashed child, a dead worker), not
                # for a run that was stopped by Ctrl-C or has not started yet.
                or_(RUNS.c.state.in_(("waiting", "stopped")), RUNS.c.attempts < max_attempts),
                or_(
                    RUNS.c.state != "running",
                    RUNS.c.heartbeat_at.is_(None),
                    RUNS.c.heartbeat_at < now - timedelta(seconds=stale_after),
                    RUNS.c.worker == worker,
                ),
            )
            .values(
                state="running",
                worker=worker,
                host=host,
                heartbeat_at=now,
                attempts=RUNS.c.attempts + 1,
                started=func.coalesce(RUNS.c.started, literal(now, type_=RUNS.c.started.type)),
                finished=None,
                failure_reason=None,
            )
        )
        with self.engine.begin() as connection:
            return connection.execute(statement).rowcount == 1

    @_retrying
    def heartbeat(self, run_id: int, worker: str) -> bool:
        """Marks the worker alive on its run.

        Returns:
            False when the run is no longer this worker's (taken over, or ended).
        """
        statement = (
            update(RUNS)
            .where(RUNS.c.id == run_id, RUNS.c.worker == worker, RUNS.c.state == "running")
            .values(heartbeat_at=utcnow())
        )
        with self.engine.begin() as connection:
            return connection.execute(statement).rowcount == 1

    @_retrying
    def record_epoch(self, run_id: int, record: Mapping[str, Any]) -> None:
        """Stores one epoch record; a re-trained epoch replaces the earlier row.

        Args:
            run_id: the run.
            record: `epoch` (1-based) and `loss, acc, val_loss, val_acc, lr, seconds,
                images_per_second`, and any of the other `EPOCH_FIELDS` (missing ones
                are NULL); other keys are ignored. NaN is stored as NULL.

        Raises:
            ValueError: a key missing, or an epoch below 1.
            KeyError: no such run.
        """
        missing = [key for key in REQUIRED_EPOCH_FIELDS if key not in record]
        if missing:
            raise ValueError(f"epoch record of run {run_id}: missing {', '.join(missing)}")
        epoch = int(record["epoch"])
        if epoch < 1:
            raise ValueError(f"epoch record of run {run_id}: epoch must be >= 1, got {epoch}")
        values = {key: _number(record.get(key)) for key in _METRICS}
        statement = (
            self._insert(EPOCHS)
            .values(run_id=run_id, epoch=epoch, **values)
            .on_conflict_do_update(
                index_elements=["run_id", "epoch"],
                set_={**values, "trainings": EPOCHS.c.trainings + 1},
            )
        )
        try:
            with self.engine.begin() as connection:
                connection.execute(statement)
        except IntegrityError:
            raise KeyError(f"no run {run_id}") from None

    @_retrying
    def finish_run(
        self,
        run_id: int,
        state: str,
        *,
        failure_reason: str | None = None,
        device: str | None = None,
        versions: dict[str, Any] | None = None,
    ) -> None:
        """Ends a run in `state`; `device` and `versions` are kept when not given.

        Raises:
            ValueError: an unknown state.
            KeyError: no such run.
        """
        if state not in RUN_STATES:
            raise ValueError(f"state must be one of {', '.join(RUN_STATES)}, got {state!r}")
        values: dict[str, Any] = {"state": state, "finished": utcnow(), "failure_reason": failure_reason}
        if device is not None:
            values["device"] = device
        if versions is not None:
            values["versions"] = versions
        with self.engine.begin() as connection:
            if connection.execute(update(RUNS).where(RUNS.c.id == run_id).values(**values)).rowcount != 1:
                raise KeyError(f"no run {run_id}")

    @_retrying
    def release_run(self, run_id: int, *, stale_after: float, reason: str) -> bool:
        """Puts a run whose worker stopped beating back as "stopped", claimable again.

        One conditional UPDATE: only a run still "running" with a heartbeat older than
        `stale_after` seconds is released, so a live worker's run is never taken.

        Returns:
            Whether the run was released.
        """
        stale_before = utcnow() - timedelta(seconds=stale_after)
        statement = (
            update(RUNS)
            .where(RUNS.c.id == run_id, RUNS.c.state == "running", RUNS.c.heartbeat_at < stale_before)
            .values(state="stopped", finished=utcnow(), failure_reason=reason)
        )
        with self.engine.begin() as connection:
            return connection.execute(statement).rowcount == 1

    @_retrying
    def reset_runs(self, run_ids: list[int], *, reason: str = "reset by sweep retry") -> list[int]:
        """Puts failed and stopped runs back as "stopped", claimable whatever their
        retries (`sweep retry`): their attempts, epochs and checkpoints are kept, so
        that each continues from its last checkpoint.

        One conditional UPDATE: a run that is complete, diverged, pruned, waiting or
        running is left alone (a run under a dead worker is released by the next
        worker, not here).

        Returns:
            The ids of the runs reset.
        """
        if not run_ids:
            return []
        statement = (
            update(RUNS)
            .where(RUNS.c.id.in_(run_ids), RUNS.c.state.in_(("failed", "stopped")))
            .values(state="stopped", finished=None, failure_reason=reason)
            .returning(RUNS.c.id)
        )
        with self.engine.begin() as connection:
            return sorted(connection.execute(statement).scalars())

    @_retrying
    def set_trial_number(self, run_id: int, trial_number: int) -> None:
        """Links a run to the Optuna trial that asked for it."""
        with self.engine.begin() as connection:
            statement = update(RUNS).where(RUNS.c.id == run_id).values(trial_number=trial_number)
            if connection.execute(statement).rowcount != 1:
                raise KeyError(f"no run {run_id}")

    @_retrying
    def update_run(
        self,
        run_id: int,
        *,
        label: str | None = None,
        comment: str | None = None,
        config: dict[str, Any] | None = None,
    ) -> None:
        """Fills in what a run only gets later: a search trial's label and configuration
        are known once Optuna has asked for them. Values left None are kept.

        Raises:
            KeyError: no such run.
        """
        values = {
            name: value
            for name, value in (("label", label), ("comment", comment), ("config", config))
            if value is not None
        }
        if not values:
            return
        with self.engine.begin() as connection:
            if connection.execute(update(RUNS).where(RUNS.c.id == run_id).values(**values)).rowcount != 1:
                raise KeyError(f"no run {run_id}")

    # -- reads ---------------------------------------------------------------------

    @_retrying
    def run_id(self, study: str, run_key: str) -> int | None:
        """The id of a registered run, or None."""
        if not self.has_tables:
            return None
        with self.engine.connect() as connection:
            return connection.execute(
                select(RUNS.c.id).where(RUNS.c.study == study, RUNS.c.run_key == run_key)
            ).scalar_one_or_none()

    @_retrying
    def get_run(self, run_id: int) -> dict[str, Any]:
        """One run as a dict of its columns (datetimes timezone-aware UTC).

        Raises:
            KeyError: no such run.
        """
        with self.engine.connect() as connection:
            row = connection.execute(select(RUNS).where(RUNS.c.id == run_id)).one_or_none()
        if row is None:
            raise KeyError(f"no run {run_id}")
        return dict(row._mapping)

    @_retrying
    def runs(self, study: str) -> list[dict[str, Any]]:
        """The runs of a study in the order they were registered."""
        if not self.has_tables:
            return []
        with self.engine.connect() as connection:
            rows = connection.execute(select(RUNS).where(RUNS.c.study == study).order_by(RUNS.c.id))
            return [dict(row._mapping) for row in rows]

    @_retrying
    def epochs(self, run_id: int) -> list[dict[str, Any]]:
        """A run's epoch records, by epoch: the keys the trainer reported, and how often
        each epoch was trained (`trainings`)."""
        if not self.has_tables:
            return []
        columns = [EPOCHS.c[key] for key in (*EPOCH_FIELDS, "trainings")]
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(*columns).where(EPOCHS.c.run_id == run_id).order_by(EPOCHS.c.epoch)
            )
            return [dict(row._mapping) for row in rows]

    @_retrying
    def studies(self) -> list[str]:
        """The studies that have runs, sorted."""
        if not self.has_tables:
            return []
        with self.engine.connect() as connection:
            return list(connection.execute(select(RUNS.c.study).distinct().order_by(RUNS.c.study)).scalars())


__all__ = [
    "ALLOWED_URLS", "ResultStore", "check_url", "check_writable", "create_engine_for", "safe_url",
    "read_only_engine_kwargs", "sqlite_file",
]
