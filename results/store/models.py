"""The results tables: `runs` (one row per run of a study) and `epochs` (one row per
trained epoch of a run).

They live in the same database as the Optuna study, next to Optuna's own tables
(`studies`, `trials`, `trial_*`, `study_*`, `version_info`, `alembic_version`), so they
have their own `MetaData`: `Base.metadata.create_all` never touches Optuna's tables, and
Optuna's never touches ours.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, NotRequired, TypedDict, cast

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Column,
    DateTime,
    Dialect,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# The epoch fields have one definition, the trainer's `EpochRecord`; the `epochs`
# table's columns and `EpochRow` are generated from it below.
from trainer.records import EPOCH_FIELDS, OPTIONAL_EPOCH_FIELDS, REQUIRED_EPOCH_FIELDS

__all__ = [
    "EPOCHS", "EPOCH_FIELDS", "FINAL_STATES", "OPTIONAL_EPOCH_FIELDS", "REQUIRED_EPOCH_FIELDS", "RUNS",
    "RUN_STATES", "Base", "Epoch", "EpochRow", "Run", "RunRow", "RunState", "UTCDateTime", "utcnow",
]


class RunState(StrEnum):
    """Every state a run can be in (a `str`: stored, compared and printed as its value)."""

    WAITING = "waiting"
    RUNNING = "running"
    COMPLETE = "complete"
    FAILED = "failed"
    DIVERGED = "diverged"
    PRUNED = "pruned"
    STOPPED = "stopped"

    @classmethod
    def of_outcome(cls, status: str) -> RunState:
        """The state a child's outcome leaves its run in.

        Args:
            status: the outcome's status: the trainer's (`completed`, `diverged`,
                `stopped`) or the runner's (`pruned`, `failed`).
        """
        return cls.COMPLETE if status == "completed" else cls(status)


#: Every state a run can be in.
RUN_STATES = tuple(RunState)
#: States a run never leaves: `claim_run` does not hand these out again.
FINAL_STATES = (RunState.COMPLETE, RunState.DIVERGED, RunState.PRUNED)
# Explicit constraint names, so that a later Alembic migration can address them on
# every dialect (SQLite gives unnamed constraints no name to drop them by).
_NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every dialect.

    PostgreSQL stores `timestamptz`; SQLite has no time zones, so it stores naive UTC
    text. Both read back as aware UTC datetimes, so that `heartbeat_at < now - stale`
    compares the same instants on both.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: the results store keeps UTC instants")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    """Now, timezone-aware UTC, computed in Python so that SQLite and PostgreSQL agree."""
    return datetime.now(UTC)


class Base(DeclarativeBase):
    """The declarative base of the results tables, with a `MetaData` of their own."""

    metadata = MetaData(naming_convention=_NAMING)
    type_annotation_map = {
        dict[str, Any]: JSON,
        datetime: UTCDateTime,
        float: Double,
    }


class Run(Base):
    """One training run of a study: its configuration, its state and who trains it.

    Args:
        study: the Optuna study's name.
        trial_number: the Optuna trial that asked for the run, once there is one.
        run_key: `RunConfig.run_key`, unique within the study.
        label: the post's `#` (`0`, `3A`, …).
        comment: free text from the sweep file.
        config: `RunConfig.model_dump(mode="json")`.
        state: one of `RUN_STATES`.
        failure_reason: why a run failed, diverged or stopped.
        attempts: how often a worker claimed the run.
        host, worker: the machine and the worker that train (or trained) it.
        heartbeat_at: the worker's last sign of life.
        device, versions: what it ran on (accelerator; library versions).
        registered, started, finished: when it was registered, first claimed, ended.
    """

    __tablename__ = "runs"
    __table_args__ = (
        UniqueConstraint("study", "run_key"),
        Index(None, "study", "state"),
        CheckConstraint(
            "state IN (" + ", ".join(f"'{state}'" for state in RUN_STATES) + ")",
            name="state",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    study: Mapped[str] = mapped_column(String(512))
    trial_number: Mapped[int | None] = mapped_column(Integer)
    run_key: Mapped[str] = mapped_column(String(64))
    label: Mapped[str] = mapped_column(String(64), default="")
    comment: Mapped[str] = mapped_column(Text, default="")
    config: Mapped[dict[str, Any]]
    state: Mapped[str] = mapped_column(String(16), default="waiting")
    failure_reason: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    host: Mapped[str | None] = mapped_column(String(255))
    worker: Mapped[str | None] = mapped_column(String(255))
    heartbeat_at: Mapped[datetime | None]
    device: Mapped[str | None] = mapped_column(String(255))
    versions: Mapped[dict[str, Any] | None]
    registered: Mapped[datetime]
    started: Mapped[datetime | None]
    finished: Mapped[datetime | None]


def _epoch_columns() -> list[Column[Any]]:
    """The `epochs` table's columns, one per `EPOCH_FIELDS` and `trainings`.

    The order is the migrations': revision 0001 created the required fields and then
    `trainings`; every later revision appends its measurements after them (ADD COLUMN),
    so a new table has them there too and a migrated database matches a new one.
    """
    # Nullable: a diverged epoch reports NaN, which SQLite can only keep as NULL.
    measured = [name for name in REQUIRED_EPOCH_FIELDS if name != "epoch"]
    return [
        Column("run_id", Integer, ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
        Column("epoch", Integer, primary_key=True),
        *(Column(name, Double(), nullable=True) for name in measured),
        # How often this epoch was trained: above 1 only for the epoch in flight when a
        # run was killed and continued from its checkpoint (the reliability report
        # counts them).
        Column("trainings", Integer, nullable=False, default=1, server_default="1"),
        # NULL where not measured (no EMA, no test split, a diverged epoch).
        *(Column(name, Double(), nullable=True) for name in OPTIONAL_EPOCH_FIELDS),
    ]


class Epoch(Base):
    """One trained epoch of a run, as the trainer's epoch record has it.

    The primary key (run_id, epoch) makes a re-trained epoch (a run resumed from an
    earlier checkpoint) replace its row instead of adding a second one, and orders an
    export's read of a study's epochs for free.
    """

    __table__ = Table("epochs", Base.metadata, *_epoch_columns())


class RunRow(TypedDict):
    """A `runs` row as the store returns it (see `Run`)."""

    id: int
    study: str
    trial_number: int | None
    run_key: str
    label: str
    comment: str
    config: dict[str, Any]
    state: str
    failure_reason: str | None
    attempts: int
    host: str | None
    worker: str | None
    heartbeat_at: datetime | None
    device: str | None
    versions: dict[str, Any] | None
    registered: datetime
    started: datetime | None
    finished: datetime | None


#: An `epochs` row as the store returns it: the trainer's record (None for NaN) and
#: `trainings`; the optional measurements may be missing from rows built by hand.
EpochRow = TypedDict(  # type: ignore[misc]  # generated from the one definition
    "EpochRow",
    {
        "epoch": int,
        **{name: float | None for name in REQUIRED_EPOCH_FIELDS if name != "epoch"},
        "trainings": int,
        **{name: NotRequired[float | None] for name in OPTIONAL_EPOCH_FIELDS},
    },
)


#: The tables themselves, for Core statements (one UPDATE claims a run; no ORM session).
RUNS = cast(Table, Run.__table__)
EPOCHS = cast(Table, Epoch.__table__)
