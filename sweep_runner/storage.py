"""The one database URL that holds both the Optuna study and the results tables."""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from results.store import GRACE_PERIOD as _GRACE, HEARTBEAT_INTERVAL as _BEAT, Timing

if TYPE_CHECKING:  # imported where used: `sweep --help` and `sweep check` need no Optuna
    import optuna

    from results.store import StorageUrl

# Optuna's heartbeat (whole seconds for Optuna), from the run lifecycle's: a worker
# that stops beating for the grace period is dead, and its run is handed out again.
HEARTBEAT_INTERVAL = round(_BEAT)
GRACE_PERIOD = round(_GRACE)
#: The database when neither --storage nor $SWEEP_STORAGE names one.
DEFAULT_STORAGE = "sqlite:///sweeps.db"


def default_storage() -> str:
    """`--storage`, else `$SWEEP_STORAGE`, else `sqlite:///sweeps.db` in this folder."""
    return os.environ.get("SWEEP_STORAGE") or DEFAULT_STORAGE


def default_checkpoints(url: StorageUrl) -> Path:
    """A folder beside the SQLite database; `./checkpoints` for a server database.

    Across machines the folder must be shared (NFS, a bucket mount) for a run that
    another machine takes over to continue from its checkpoint.
    """
    path = url.sqlite_file
    return (path.parent if path else Path.cwd()) / "checkpoints"


def optuna_storage(url: str | StorageUrl) -> optuna.storages.RDBStorage:
    """Optuna's RDB storage with heartbeats, on the same URL as the results store, at
    the run lifecycle's timing (settable for tests: `Timing.from_env`)."""
    from results.store import rdb_storage

    timing = Timing.from_env()
    return rdb_storage(
        url,
        heartbeat_interval=max(1, round(timing.heartbeat_interval)),
        grace_period=max(2, round(timing.grace_period)),
    )


def quiet_optuna() -> None:
    """Optuna's per-trial INFO lines would scroll the progress display away."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    warnings.filterwarnings("ignore", message=".*Heartbeat of storage is supposed.*")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
