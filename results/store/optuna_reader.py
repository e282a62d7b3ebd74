"""Optuna's storage on a results store's database, opened the way the store was.

The report and the tables read what Optuna keeps (study user attributes, trials for
importances) through Optuna's public storage API: read-only when the store is, with no
table creation nor version check, and disposed of when done so that no connection
outlives the read.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from results.store.engine import read_only_engine_kwargs
from results.store.result_store import ResultStore

if TYPE_CHECKING:
    import optuna


@contextmanager
def optuna_storage(store: ResultStore) -> Iterator[optuna.storages.RDBStorage]:
    """Optuna's RDB storage on `store`'s database, for the length of a `with` block.

    Args:
        store: an open results store (read-only or not).
    """
    import optuna

    storage = optuna.storages.RDBStorage(
        store.url.render_as_string(hide_password=False),
        engine_kwargs=read_only_engine_kwargs(store.url) if store.read_only else None,
        skip_table_creation=True,
        skip_compatibility_check=True,
    )
    try:
        yield storage
    finally:
        storage.remove_session()
        storage.engine.dispose()
