"""The results store: the `runs` and `epochs` tables next to the Optuna study, the run
lifecycle, the schema and its Alembic migrations, the engine and its URL checks, the
workers' liveness and the ETA. The runner and every trial's child write through it;
`results.report` reads it.

Its public names are below; `sweep_runner` imports only these. They load on first use,
and none of them imports pandas, plotly or matplotlib.
"""

from __future__ import annotations

from sweeps.lazy import lazy_names

#: Each public name and the module that defines it.
_PUBLIC = {
    "ResultStore": "results.store.result_store",
    "EPOCH_FIELDS": "results.store.models",
    "EPOCHS": "results.store.models",
    "FINAL_STATES": "results.store.models",
    "OPTIONAL_EPOCH_FIELDS": "results.store.models",
    "REQUIRED_EPOCH_FIELDS": "results.store.models",
    "RUN_STATES": "results.store.models",
    "RUNS": "results.store.models",
    "EpochRow": "results.store.models",
    "RunRow": "results.store.models",
    "RunState": "results.store.models",
    "utcnow": "results.store.models",
    "check_url": "results.store.engine",
    "check_writable": "results.store.engine",
    "safe_url": "results.store.engine",
    "sqlite_file": "results.store.engine",
    "SCHEMA_REVISION": "results.store.schema",
    "creation_lock": "results.store.schema",
    "schema_command": ("results.store.schema", "main"),
    "known_revisions": "results.store.schema",
    "is_dead_local": "results.store.liveness",
    "RunWork": "results.store.eta",
    "eta_seconds": "results.store.eta",
    "format_duration": "results.store.eta",
    "timed_epochs": "results.store.eta",
    "StorageUrl": "results.store.storage_url",
    "LostClaim": "results.store.result_store",
    "DatabaseUnreachable": "results.store.engine",
    "check_reachable": "results.store.engine",
    "is_locked": "results.store.engine",
    "HEARTBEAT_INTERVAL": "results.store.lifecycle",
    "GRACE_PERIOD": "results.store.lifecycle",
    "INPUT_ERROR": "results.store.lifecycle",
    "Timing": "results.store.lifecycle",
    "epochs_left": "results.store.lifecycle",
    "is_claimable": "results.store.lifecycle",
    "is_final": "results.store.lifecycle",
    "is_stale": "results.store.lifecycle",
    "is_unfinished": "results.store.lifecycle",
    "OptunaStudy": "results.store.optuna_study",
    "rdb_storage": "results.store.optuna_study",
    "study_names": "results.store.optuna_study",
}
__all__ = sorted(_PUBLIC)
__getattr__, __dir__ = lazy_names(globals(), _PUBLIC)
