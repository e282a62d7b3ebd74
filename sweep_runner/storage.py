"""The one database URL that holds both the Optuna study and the results tables."""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.engine import make_url

from results.store import lifecycle
from sweeps.errors import InputError

if TYPE_CHECKING:  # imported where used: `sweep --help` and `sweep check` need no Optuna
    import optuna

# Optuna's heartbeat (whole seconds for Optuna), from the run lifecycle's: a worker
# that stops beating for the grace period is dead, and its run is handed out again.
HEARTBEAT_INTERVAL = round(lifecycle.HEARTBEAT_INTERVAL)
GRACE_PERIOD = round(lifecycle.GRACE_PERIOD)
#: The database when neither --storage nor $SWEEP_STORAGE names one.
DEFAULT_STORAGE = "sqlite:///sweeps.db"


def sqlite_path(url: str) -> Path | None:
    """The database file of a SQLite URL, else None."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database)


def default_storage() -> str:
    """`--storage`, else `$SWEEP_STORAGE`, else `sqlite:///sweeps.db` in this folder."""
    return os.environ.get("SWEEP_STORAGE") or DEFAULT_STORAGE


def default_checkpoints(url: str) -> Path:
    """A folder beside the SQLite database; `./checkpoints` for a server database.

    Across machines the folder must be shared (NFS, a bucket mount) for a run that
    another machine takes over to continue from its checkpoint.
    """
    path = sqlite_path(url)
    return (path.parent if path else Path.cwd()) / "checkpoints"


def optuna_storage(url: str) -> optuna.storages.RDBStorage:
    """Optuna's RDB storage with heartbeats, on the same URL as the results store."""
    import optuna

    timing = lifecycle.Timing.from_env()
    engine_kwargs: dict = {}
    if sqlite_path(url) is not None:
        # Optuna's own connections wait for a lock instead of failing at once.
        engine_kwargs["connect_args"] = {"timeout": 60}
    else:
        from results.store.engine import server_engine_kwargs

        engine_kwargs.update(server_engine_kwargs())  # no connection held at rest
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        try:
            return optuna.storages.RDBStorage(
                url,
                engine_kwargs=engine_kwargs,
                heartbeat_interval=max(1, round(timing.heartbeat_interval)),
                grace_period=max(2, round(timing.grace_period)),
            )
        except Exception as error:  # Optuna wraps driver errors in several types
            from sqlalchemy.exc import OperationalError

            from results.store.engine import unreachable

            cause = error if isinstance(error, OperationalError) else error.__cause__ or error.__context__
            if sqlite_path(url) is None and isinstance(cause, OperationalError):
                raise unreachable(url, cause) from None
            raise InputError(f"--storage: cannot open {url!r} for Optuna: {error}") from None


def quiet_optuna() -> None:
    """Optuna's per-trial INFO lines would scroll the progress display away."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    warnings.filterwarnings("ignore", message=".*Heartbeat of storage is supposed.*")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
