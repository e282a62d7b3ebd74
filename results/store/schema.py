"""The results tables' schema revision, and its migrations (Alembic, as Optuna does).

A new database gets the tables from the models and is stamped with `SCHEMA_REVISION`
in its own version table, `sweep_alembic_version` (Optuna's Alembic uses
`alembic_version` in the same database). A database at another revision is refused
with the command that migrates it:

    sweep db upgrade --storage sqlite:///sweeps.db   (or python -m results.store.schema upgrade …)

The migration scripts live in `results/migrations/versions`; their head must equal
`SCHEMA_REVISION` (a test checks it).
"""

from __future__ import annotations

import argparse
import fcntl
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    inspect,
    select,
    text,
)
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

from results.store.models import Base
from sweeps.errors import InputError

if TYPE_CHECKING:
    from alembic.config import Config

#: The revision of the results tables this code reads and writes.
SCHEMA_REVISION = "0003_bn_measurements"
#: Our Alembic version table; not `alembic_version`, which is Optuna's.
VERSION_TABLE = "sweep_alembic_version"
MIGRATIONS = Path(__file__).with_name("migrations")
RESULT_TABLES = frozenset(Base.metadata.tables)

# The layout Alembic gives its version table, so that Alembic reads our stamp.
_version = Table(
    VERSION_TABLE,
    MetaData(),
    Column("version_num", String(32), nullable=False),
    PrimaryKeyConstraint("version_num", name=f"{VERSION_TABLE}_pkc"),
)
# Any constant: the key of the PostgreSQL advisory lock that serialises table creation.
_CREATE_LOCK = 0x5EE9_0001
# Another: the key of the lock that serialises creating a study (see `creation_lock`).
_STUDY_LOCK = 0x5EE9_0002


def _upgrade_hint(url: str) -> str:
    return f"sweep db upgrade --storage {url}"


def _stamped(connection: Connection) -> list[str] | None:
    """The revisions in our version table, or None when there is no such table."""
    if not inspect(connection).has_table(VERSION_TABLE):
        return None
    return list(connection.execute(select(_version.c.version_num)).scalars())


def _check(connection: Connection, url: str) -> bool:
    """Whether the results tables are there at `SCHEMA_REVISION`.

    Raises:
        InputError: the tables are at another revision, or unversioned.
    """
    # Tables first, version second: these are two reads, and another process may
    # create both (in one transaction) in between. Read the other way round, a fresh
    # database would look like tables without a version.
    present = RESULT_TABLES & set(inspect(connection).get_table_names())
    stamped = _stamped(connection)
    if stamped == [SCHEMA_REVISION]:
        return True
    if not stamped and not present:
        return False
    if not stamped:
        raise InputError(
            f"--storage {url}: tables {', '.join(sorted(present))} have no schema revision "
            f"({VERSION_TABLE} is missing or empty): if keras-sweep wrote them, run "
            f"`sweep db stamp {SCHEMA_REVISION} --storage {url}`"
        )
    found = ", ".join(stamped)
    if all(revision in known_revisions() for revision in stamped):
        raise InputError(
            f"--storage {url}: the results tables are at schema revision {found}, this "
            f"keras-sweep needs {SCHEMA_REVISION}: back the database up, then run "
            f"`{_upgrade_hint(url)}`"
        )
    raise InputError(
        f"--storage {url}: the results tables are at schema revision {found}, which this "
        f"keras-sweep does not know (it needs {SCHEMA_REVISION}): a newer keras-sweep wrote "
        f"them; upgrade keras-sweep, or use another --storage"
    )


def ensure_schema(engine: Engine, *, create: bool, url: str) -> bool:
    """Checks the results tables, creating them in a new database when `create`.

    Returns:
        Whether the tables are there (False only when `create` is False).

    Raises:
        InputError: tables of another schema revision.
    """
    with engine.connect() as connection:
        if _check(connection, url):
            return True
    if not create:
        return False
    # Creation is serialised: several workers start on a fresh database at once, and
    # none may see the tables without their version row.
    for attempt in range(3):
        try:
            with engine.connect() as connection:
                if engine.dialect.name == "sqlite":
                    connection.exec_driver_sql("BEGIN IMMEDIATE")
                elif engine.dialect.name == "postgresql":
                    connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _CREATE_LOCK})
                if not _check(connection, url):
                    Base.metadata.create_all(connection)
                    _version.create(connection, checkfirst=True)
                    connection.execute(_version.insert().values(version_num=SCHEMA_REVISION))
                connection.commit()
            return True
        except (IntegrityError, OperationalError, ProgrammingError):
            # Another process created them between our check and our CREATE (a
            # database without advisory locks or BEGIN IMMEDIATE): check again.
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


@contextmanager
def creation_lock(url: str) -> Iterator[None]:
    """Serialises, across processes and machines, what is not safe to race: creating
    Optuna's tables (several statements and an Alembic stamp) and a study with its
    queue of trials. Two `sweep run` started at the same moment on a new database
    would otherwise fail with "table studies already exists" or leave a duplicate
    WAITING trial.

    SQLite: an exclusive `flock` on the database's folder (the file may not exist
    yet; SQLite's own locks are fcntl locks and do not interfere). PostgreSQL: a
    session-level advisory lock, on a connection of its own in autocommit so that it
    does not hold a transaction open.

    Args:
        url: the storage URL (checked).
    """
    from sqlalchemy.engine import make_url

    from results.store.engine import check_url, create_engine_for

    parsed = make_url(url)  # not check_url: the file may be half made by the lock's holder
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if not database or database == ":memory:" or database.startswith("file:"):
            yield
            return
        descriptor = os.open(Path(database).resolve().parent, os.O_RDONLY)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            yield
        finally:
            os.close(descriptor)  # releases the lock
        return
    engine = create_engine_for(check_url(url))
    try:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _STUDY_LOCK})
            try:
                yield
            finally:
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _STUDY_LOCK})
    finally:
        engine.dispose()


def alembic_config(url: str) -> Config:
    """An Alembic configuration for the results tables of the database at `url`."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    # ConfigParser interpolation: a % in a password must be doubled.
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def known_revisions() -> set[str]:
    """Every revision the migration scripts know."""
    from alembic.script import ScriptDirectory

    scripts = ScriptDirectory(str(MIGRATIONS))
    return {script.revision for script in scripts.walk_revisions()}


def head_revision() -> str:
    """The head of the migration scripts (must equal `SCHEMA_REVISION`)."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory(str(MIGRATIONS)).get_current_head()
    assert head is not None
    return head


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m results.store.schema {current,upgrade,stamp} --storage URL`."""
    from alembic import command

    from results.store.engine import check_url, create_engine_for, safe_url

    parser = argparse.ArgumentParser(prog="python -m results.store.schema", description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["current", "upgrade", "stamp"])
    parser.add_argument("revision", nargs="?", default="head", help="target revision (default: head)")
    parser.add_argument("--storage", required=True, help="the database URL")
    args = parser.parse_args(argv)
    try:
        url = check_url(args.storage, must_exist=True)
    except InputError as error:
        print(error, file=sys.stderr)
        return 2
    plain = url.render_as_string(hide_password=False)
    config = alembic_config(plain)
    if args.action == "current":
        engine = create_engine_for(url)
        with engine.connect() as connection:
            stamped = _stamped(connection)
        engine.dispose()
        print(
            f"{safe_url(url)}: results schema {', '.join(stamped or ['(none)'])}; this keras-sweep: {SCHEMA_REVISION}"
        )
    elif args.action == "upgrade":
        command.upgrade(config, args.revision)
    else:
        command.stamp(config, args.revision)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
