"""Alembic environment of the results tables (`runs`, `epochs`).

Run through `sweep db upgrade --storage URL` (or `python -m results.store.schema upgrade --storage URL`). It uses the version table
`sweep_alembic_version` and sees only the results tables: Optuna's tables in the same
database belong to Optuna's own Alembic history.
"""

from __future__ import annotations

from typing import Any

from alembic import context

from results.store.models import Base
from results.store.schema import VERSION_TABLE
from results.store.engine import create_engine_for


def _include_name(name: str | None, type_: Any, _parents: Any) -> bool:
    # Autogenerate must neither drop nor alter Optuna's tables.
    return type_ != "table" or name in Base.metadata.tables


def _configure(**kwargs: Any) -> None:
    context.configure(
        target_metadata=Base.metadata,
        version_table=VERSION_TABLE,
        include_name=_include_name,
        render_as_batch=True,  # SQLite alters a table by copying it
        **kwargs,
    )


if context.is_offline_mode():
    _configure(url=context.config.get_main_option("sqlalchemy.url"), literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    engine = create_engine_for(context.config.get_main_option("sqlalchemy.url") or "")
    try:
        with engine.connect() as connection:
            _configure(connection=connection)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()
