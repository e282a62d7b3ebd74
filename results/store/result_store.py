"""The results store: runs and their epochs, in the database that holds the Optuna study.

Every method is one short transaction, so that many workers on one SQLite file (or on
PostgreSQL) interleave without holding locks while they train. Claiming a run is one
conditional UPDATE: the database, not the workers, decides who trains what.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from typing import Any, Concatenate, ParamSpec, TypeVar, cast

from sqlalchemy import Connection, Engine, case, func, inspect, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL
from sqlalchemy.exc import IntegrityError, OperationalError

from results.store.engine import (
    check_writable,
    create_engine_for,
    is_locked,
    safe_url,
    sqlite_file,
    unreachable,
)
from results.store.lifecycle import claimable_where, holds, server_now, stale_where, unclaimed_since
from results.store.models import (
    EPOCH_FIELDS,
    EPOCHS,
    REQUIRED_EPOCH_FIELDS,
    RUN_STATES,
    RUNS,
    EpochRow,
    RunRow,
    RunState,
    utcnow,
)
from results.store.optuna_study import study_summaries
from results.store.schema import RESULT_TABLES, ensure_schema
from results.store.storage_url import StorageUrl
from sweeps.errors import InputError

# On top of the busy timeout: SQLite answers some lock conflicts at once, without
# waiting (a reader that wants to write while another writer commits), so retry those.
_LOCK_RETRIES = 6
_LOCK_FIRST_DELAY = 0.05

_P = ParamSpec("_P")
_T = TypeVar("_T")

_METRICS = EPOCH_FIELDS[1:]


class LostClaim(Exception):
    """A write for a run whose claim this writer no longer holds: another worker took
    the run over, or it was put back. The writer must stop at once."""

    def __init__(self, run_id: int, attempt: int) -> None:
        super().__init__(
            f"run {run_id}: attempt {attempt} no longer holds the run (taken over or put back); "
            "nothing written"
        )
        self.run_id, self.attempt = run_id, attempt


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
    studies = study_summaries(url)
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

    def __init__(self, url: str | StorageUrl, *, create: bool = True, read_only: bool = False) -> None:
        #: The checked URL, for the store's own Optuna storage and other processes.
        self.storage = StorageUrl.parse(url, must_exist=not create or read_only)
        self.url = self.storage.url
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
            if path is None:  # a server: down, restarting or unreachable
                raise unreachable(self.url, error) from None
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
                state=RunState.WAITING,
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

    @property
    def dialect(self) -> str:
        """`sqlite` or `postgresql`: which SQL the database's clock is read with."""
        return self.engine.dialect.name

    @_retrying
    def now(self) -> datetime:
        """The database server's time (aware UTC): every "how old is this heartbeat"
        is measured against it, never against this machine's clock."""
        with self.engine.connect() as connection:
            return connection.execute(select(server_now(self.dialect))).scalar_one()

    @_retrying
    def uptime(self) -> float | None:
        """Seconds since the database server started (PostgreSQL), None for SQLite: no
        run is taken over before a server that restarted has been up a grace period."""
        if self.dialect != "postgresql":
            return None
        with self.engine.connect() as connection:
            return float(connection.exec_driver_sql(
                "SELECT extract(epoch FROM clock_timestamp() - pg_postmaster_start_time())"
            ).scalar_one())

    @_retrying
    def claim_run(
        self, run_id: int, *, worker: str, host: str, stale_after: float, max_attempts: int,
        attempt_seen: int | None = None,
    ) -> int | None:
        """Takes a run for `worker` if nobody else trains it: one conditional UPDATE,
        decided by the database's clock (`lifecycle.claimable_where`).

        The run is claimable when it is not final (complete, diverged, pruned), has
        attempts left if it failed or its worker died, and is not running, or runs with
        a heartbeat older than `stale_after` seconds by the database server's clock (its
        worker died), or runs for this very worker (a restarted worker takes its own run
        back).

        Args:
            attempt_seen: the run's `attempts` when the caller decided to take it over;
                the claim is made only if no claim came since. A takeover decided on a
                read (`stale_after=0` for a dead worker of this machine) needs it: two
                workers that saw the same dead worker would otherwise both take its run,
                the second from the first.

        Returns:
            The claim's attempt number, the token every later write for the run must
            carry (`holds`), or None when another worker has the run.
        """
        claimable = claimable_where(
            worker=worker, stale_after=stale_after, max_attempts=max_attempts, dialect=self.dialect
        )
        statement = (
            update(RUNS).where(RUNS.c.id == run_id, claimable, *unclaimed_since(attempt_seen))
            .values(**self._claimed(worker, host)).returning(RUNS.c.attempts)
        )
        with self.engine.begin() as connection:
            return connection.execute(statement).scalar_one_or_none()

    @_retrying
    def claim_first(
        self, run_ids: list[int], *, worker: str, host: str, stale_after: float, max_attempts: int
    ) -> tuple[int, int] | None:
        """Takes the first of `run_ids`, in that order, that `claim_run` could take: one
        statement however many workers race for the same runs.

        Claiming them one by one, N workers that start together lose about N²/2 races
        between them (`benchmarks/scale.py`). Here a worker never waits for a run
        another claim is taking: PostgreSQL skips rows locked at that moment (`FOR
        UPDATE SKIP LOCKED`, the job-queue idiom) and takes the next; SQLite has one
        writer at a time anyway. The claimable condition is checked again on the row
        taken, so a run is never claimed twice.

        Returns:
            (the run's id, the claim's attempt), or None when none of them was free.
        """
        if not run_ids:
            return None
        claimable = claimable_where(
            worker=worker, stale_after=stale_after, max_attempts=max_attempts, dialect=self.dialect
        )
        rank = case({run_id: index for index, run_id in enumerate(run_ids)}, value=RUNS.c.id)
        first = (
            select(RUNS.c.id).where(RUNS.c.id.in_(run_ids), claimable).order_by(rank).limit(1)
            .with_for_update(skip_locked=True).scalar_subquery()
        )
        statement = (
            update(RUNS).where(RUNS.c.id == first, claimable)
            .values(**self._claimed(worker, host)).returning(RUNS.c.id, RUNS.c.attempts)
        )
        with self.engine.begin() as connection:
            row = connection.execute(statement).one_or_none()
        return None if row is None else (int(row[0]), int(row[1]))

    def _claimed(self, worker: str, host: str) -> dict[str, Any]:
        """A claim's new values: running for `worker`, beating now, one more attempt."""
        now = server_now(self.dialect)
        return {
            "state": RunState.RUNNING, "worker": worker, "host": host, "heartbeat_at": now,
            "attempts": RUNS.c.attempts + 1, "started": func.coalesce(RUNS.c.started, now),
            "finished": None, "failure_reason": None,
        }

    @_retrying
    def heartbeat(self, run_id: int, worker: str, attempt: int | None = None) -> bool:
        """Marks the worker alive on its run, at the database's time.

        Args:
            attempt: the claim's token; None accepts any attempt of this worker.

        Returns:
            False when the run is no longer this worker's (taken over, or ended).
        """
        where = [RUNS.c.id == run_id, RUNS.c.worker == worker, RUNS.c.state == RunState.RUNNING]
        if attempt is not None:
            where.append(RUNS.c.attempts == attempt)
        statement = update(RUNS).where(*where).values(heartbeat_at=server_now(self.dialect))
        with self.engine.begin() as connection:
            return connection.execute(statement).rowcount == 1

    def _hold(self, connection: Connection, run_id: int, attempt: int) -> None:
        """Takes the run's row for this transaction if the claim `attempt` still holds
        it: a no-op UPDATE, so that a takeover waits for this transaction's end.

        Raises:
            LostClaim: the run is no longer held at `attempt`.
        """
        statement = update(RUNS).where(holds(run_id, attempt)).values(attempts=RUNS.c.attempts)
        if connection.execute(statement).rowcount != 1:
            raise LostClaim(run_id, attempt)

    def holds(self, run_id: int, attempt: int) -> bool:
        """Whether the claim `attempt` still holds the run (check first, write second,
        for what cannot be written in the database's transaction: Optuna's storage)."""
        with self.engine.connect() as connection:
            return connection.execute(select(RUNS.c.id).where(holds(run_id, attempt))).first() is not None

    @contextmanager
    def fenced(self, run_id: int, attempt: int) -> Iterator[None]:
        """Holds the run's row while the block writes a file for it (a checkpoint made
        current, the outcome): a takeover cannot commit before the block ends, and a
        writer that lost the run writes nothing.

        Raises:
            LostClaim: before the block, when the run is no longer held at `attempt`.
        """
        with self.engine.begin() as connection:
            self._hold(connection, run_id, attempt)
            yield

    @_retrying
    def record_epoch(self, run_id: int, record: Mapping[str, Any], attempt: int | None = None) -> None:
        """Stores one epoch record; a re-trained epoch replaces the earlier row.

        Idempotent per (run, attempt, epoch): the same write again (a retry after a lost
        COMMIT) changes nothing; an epoch trained again by a later attempt counts one
        more in `trainings`.

        Args:
            run_id: the run.
            record: `epoch` (1-based) and `loss, acc, val_loss, val_acc, lr, seconds,
                images_per_second`, and any of the other `EPOCH_FIELDS` (missing ones
                are NULL); other keys are ignored. NaN is stored as NULL.
            attempt: the claim's token: written only while it holds the run. None
                writes whoever holds it (tests, tools).

        Raises:
            ValueError: a key missing, or an epoch below 1.
            KeyError: no such run.
            LostClaim: the claim `attempt` no longer holds the run.
        """
        missing = [key for key in REQUIRED_EPOCH_FIELDS if key not in record]
        if missing:
            raise ValueError(f"epoch record of run {run_id}: missing {', '.join(missing)}")
        epoch = int(record["epoch"])
        if epoch < 1:
            raise ValueError(f"epoch record of run {run_id}: epoch must be >= 1, got {epoch}")
        values = {key: _number(record.get(key)) for key in _METRICS}
        insert = self._insert(EPOCHS).values(run_id=run_id, epoch=epoch, attempt=attempt, **values)
        retrained = case((EPOCHS.c.attempt == insert.excluded.attempt, 0), else_=1)
        statement = insert.on_conflict_do_update(
            index_elements=["run_id", "epoch"],
            set_={**values, "attempt": insert.excluded.attempt, "trainings": EPOCHS.c.trainings + retrained},
        )
        try:
            with self.engine.begin() as connection:
                if attempt is not None:
                    self._hold(connection, run_id, attempt)
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
        attempt: int | None = None,
    ) -> None:
        """Ends a run in `state`; `device` and `versions` are kept when not given.

        Args:
            attempt: the claim's token: the run ends only while it holds the run. None
                ends it whoever holds it (tests, tools).

        Raises:
            ValueError: an unknown state.
            KeyError: no such run.
            LostClaim: the claim `attempt` no longer holds the run.
        """
        if state not in RUN_STATES:
            raise ValueError(f"state must be one of {', '.join(RUN_STATES)}, got {state!r}")
        values: dict[str, Any] = {
            "state": state, "finished": server_now(self.dialect), "failure_reason": failure_reason,
        }
        if device is not None:
            values["device"] = device
        if versions is not None:
            values["versions"] = versions
        where = holds(run_id, attempt) if attempt is not None else RUNS.c.id == run_id
        with self.engine.begin() as connection:
            if connection.execute(update(RUNS).where(where).values(**values)).rowcount == 1:
                return
            if attempt is not None and self._exists(connection, run_id):
                raise LostClaim(run_id, attempt)
            raise KeyError(f"no run {run_id}")

    @staticmethod
    def _exists(connection: Connection, run_id: int) -> bool:
        return connection.execute(select(RUNS.c.id).where(RUNS.c.id == run_id)).first() is not None

    @_retrying
    def release_run(
        self, run_id: int, *, stale_after: float, reason: str, attempt_seen: int | None = None
    ) -> bool:
        """Puts a run whose worker stopped beating back as "stopped", claimable again.

        One conditional UPDATE: only a run still "running" with a heartbeat older than
        `stale_after` seconds by the database's clock, and not claimed since its
        `attempts` were `attempt_seen` (`claim_run`), is released, so a live worker's
        run is never taken.

        Returns:
            Whether the run was released.
        """
        statement = (
            update(RUNS)
            .where(RUNS.c.id == run_id, stale_where(stale_after, self.dialect), *unclaimed_since(attempt_seen))
            .values(state=RunState.STOPPED, finished=server_now(self.dialect), failure_reason=reason)
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
            .where(RUNS.c.id.in_(run_ids), RUNS.c.state.in_((RunState.FAILED, RunState.STOPPED)))
            .values(state=RunState.STOPPED, finished=None, failure_reason=reason)
            .returning(RUNS.c.id)
        )
        with self.engine.begin() as connection:
            return sorted(connection.execute(statement).scalars())

    @_retrying
    def set_slurm_job(self, run_id: int, worker: str, slurm_job: str | None) -> bool:
        """Names the Slurm job array task (`ARRAY_TASK`) whose worker trains the run.

        Returns:
            False when the run is no longer this worker's.
        """
        statement = (
            update(RUNS)
            .where(RUNS.c.id == run_id, RUNS.c.worker == worker, RUNS.c.state == RunState.RUNNING)
            .values(slurm_job=slurm_job)
        )
        with self.engine.begin() as connection:
            return connection.execute(statement).rowcount == 1

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
    def get_run(self, run_id: int) -> RunRow:
        """One run as a dict of its columns (datetimes timezone-aware UTC).

        Raises:
            KeyError: no such run.
        """
        with self.engine.connect() as connection:
            row = connection.execute(select(RUNS).where(RUNS.c.id == run_id)).one_or_none()
        if row is None:
            raise KeyError(f"no run {run_id}")
        return cast(RunRow, dict(row._mapping))

    @_retrying
    def runs(self, study: str) -> list[RunRow]:
        """The runs of a study in the order they were registered."""
        if not self.has_tables:
            return []
        with self.engine.connect() as connection:
            rows = connection.execute(select(RUNS).where(RUNS.c.study == study).order_by(RUNS.c.id))
            return [cast(RunRow, dict(row._mapping)) for row in rows]

    @_retrying
    def epochs(self, run_id: int) -> list[EpochRow]:
        """A run's epoch records, by epoch: the keys the trainer reported, and how often
        each epoch was trained (`trainings`)."""
        if not self.has_tables:
            return []
        columns = [EPOCHS.c[key] for key in (*EPOCH_FIELDS, "trainings")]
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(*columns).where(EPOCHS.c.run_id == run_id).order_by(EPOCHS.c.epoch)
            )
            return [cast(EpochRow, dict(row._mapping)) for row in rows]

    @_retrying
    def epoch_attempts(self, run_id: int) -> dict[int, int | None]:
        """Which attempt (claim) wrote each of a run's epoch rows; None for rows written
        unfenced or before schema revision 0005."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(EPOCHS.c.epoch, EPOCHS.c.attempt).where(EPOCHS.c.run_id == run_id).order_by(EPOCHS.c.epoch)
            )
            return {epoch: attempt for epoch, attempt in rows}

    @_retrying
    def studies(self) -> list[str]:
        """The studies that have runs, sorted."""
        if not self.has_tables:
            return []
        with self.engine.connect() as connection:
            return list(connection.execute(select(RUNS.c.study).distinct().order_by(RUNS.c.study)).scalars())


__all__ = ["LostClaim", "ResultStore"]
