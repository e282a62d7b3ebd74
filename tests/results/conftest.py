"""Fixtures of the results tests: a storage per backend and hand-made histories.

Every store test runs on SQLite in `tmp_path`, and on PostgreSQL in a fresh database
from the suite's `postgres_url` fixture (`$SWEEP_TEST_POSTGRES_URL`, else a throw-away
cluster; skipped where PostgreSQL is not installed).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest

from results.store.result_store import ResultStore

POSTGRES_URL = os.environ.get("SWEEP_TEST_POSTGRES_URL")

Record = dict[str, Any]


def _reset_postgres(url: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.begin() as connection:
        for table in ("epochs", "runs", "sweep_alembic_version"):
            connection.execute(text(f"DROP TABLE IF EXISTS {table} CASCADE"))
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def storage_url(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    """A fresh, empty storage URL: a SQLite file, or a new PostgreSQL database.

    PostgreSQL comes from the suite's `postgres_url` fixture (tests/conftest.py: the
    server of $SWEEP_TEST_POSTGRES_URL, else a throw-away cluster; skipped where
    PostgreSQL is not installed).
    """
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'sweeps.db'}"
    try:
        return str(request.getfixturevalue("postgres_url"))
    except pytest.FixtureLookupError:
        # Run without the suite's conftest: the given server, emptied of our tables.
        if not POSTGRES_URL:
            pytest.skip("SWEEP_TEST_POSTGRES_URL is not set")
        _reset_postgres(POSTGRES_URL)
        return POSTGRES_URL


@pytest.fixture
def sqlite_url(tmp_path: Any) -> str:
    """A SQLite storage URL in `tmp_path` (for tests of SQLite itself, or of files)."""
    return f"sqlite:///{tmp_path / 'sweeps.db'}"


@pytest.fixture
def store(storage_url: str) -> Iterator[ResultStore]:
    result_store = ResultStore(storage_url)
    yield result_store
    result_store.close()


def make_history(
    val_acc: Sequence[float],
    *,
    acc: Sequence[float] | None = None,
    loss: Sequence[float] | None = None,
    val_loss: Sequence[float] | None = None,
    lr: Sequence[float] | float = 8e-4,
    seconds: float = 10.0,
) -> list[Record]:
    """Epoch records, epochs 1…n, from per-epoch lists (defaults: plausible values)."""
    n = len(val_acc)
    acc = acc if acc is not None else [min(1.0, v + 0.07) for v in val_acc]
    loss = loss if loss is not None else [2.0 * math.exp(-e / 10) + 0.01 for e in range(1, n + 1)]
    val_loss = val_loss if val_loss is not None else [0.3 + math.exp(-e / 8) for e in range(1, n + 1)]
    lrs = [lr] * n if isinstance(lr, float) else list(lr)
    return [
        {
            "epoch": e + 1,
            "loss": loss[e],
            "acc": acc[e],
            "val_loss": val_loss[e],
            "val_acc": val_acc[e],
            "lr": lrs[e],
            "seconds": seconds,
            "images_per_second": 5000.0,
        }
        for e in range(n)
    ]


@pytest.fixture
def history() -> Callable[..., list[Record]]:
    """`make_history` as a fixture."""
    return make_history


@pytest.fixture
def reset_postgres() -> Callable[[str], None]:
    """Drops the results tables of a PostgreSQL database."""
    return _reset_postgres


# -- a study like the post's Table 1 ---------------------------------------------------

POST_SCHEDULE = "[8.e-4, 20][8.e-5, 40][1.e-5, 50][4.e-6, 60]"


def _ramp(peak: float, n: int = 60, *, at: int = 45) -> list[float]:
    """A val_acc that rises to `peak` at epoch `at` and stays a little below it."""
    values = [
        0.4 + (peak - 0.4) * min(1.0, e / at) ** 0.5 - (0.0005 if e > at else 0.0) for e in range(1, n + 1)
    ]
    values[at - 1] = peak
    return values


def post_study_runs() -> list[dict[str, Any]]:
    """Eight runs with hand-made histories: labels, settings and what the table must say.

    Run 0 never reaches 0.92 (it first reaches its 0.91 level at epoch 47); run 10's
    val_loss fluctuates by 11.3 while the LR is high; run 12 has a relative schedule;
    run 13 is waiting, with no epochs.
    """
    from sweeps.config import RunConfig

    run_0 = [0.4 + 0.5 * e / 46 for e in range(1, 47)] + [0.9123] + [0.911] * 12 + [0.9129]
    fluctuating = [2.0, 1.2, 0.9, 5.0, 0.7, 12.0] + [0.5 - 0.004 * e for e in range(54)]
    lr_10 = [8e-4] * 6 + [4e-5] * 54
    runs = [
        dict(label="10", weight_decay=0.3, val_acc=_ramp(0.9349), val_loss=fluctuating, lr=lr_10),
        dict(label="3B", weight_decay=0.05, val_acc=_ramp(0.9262, at=58)),
        dict(label="0", weight_decay=0.0, val_acc=run_0),
        dict(label="2", weight_decay=4e-3, val_acc=_ramp(0.9158)),
        dict(
            label="11",
            weight_decay=0.4,
            val_acc=_ramp(0.9261),
            loss=[max(2.516e-4, 1.0 - e / 50) for e in range(1, 61)],
        ),
        dict(label="3A", weight_decay=0.01, val_acc=_ramp(0.9172)),
        dict(label="1", weight_decay=5e-4, val_acc=_ramp(0.9191)),
        dict(
            label="12",
            weight_decay=0.2,
            learning_rate=4e-4,
            relative="[1, 20][0.2, 40][0.025, 50][0.005, 60]",
            val_acc=_ramp(0.9268),
        ),
        dict(label="13", weight_decay=0.2, val_acc=[]),
    ]
    for run in runs:
        if "relative" in run:
            config = RunConfig(
                weight_decay=run["weight_decay"],
                learning_rate=run["learning_rate"],
                schedule={"breakpoints": run["relative"], "relative": True},
                ema_momentum=0.98,
            )
        else:
            config = RunConfig(weight_decay=run["weight_decay"], schedule=POST_SCHEDULE, ema_momentum=0.98)
        run["config"] = config
        n = len(run["val_acc"])
        run["records"] = (
            make_history(
                run["val_acc"],
                loss=run.get("loss"),
                val_loss=run.get("val_loss"),
                lr=run.get("lr") or [config.lr_at(e) for e in range(1, n + 1)],
            )
            if n
            else []
        )
    return runs


def fill_study(store: ResultStore, study: str, runs: list[dict[str, Any]]) -> None:
    """Registers, trains (records) and finishes the runs."""
    for number, run in enumerate(runs):
        run_id = store.register_run(
            study,
            run["config"].run_key,
            label=run["label"],
            comment=f"run {run['label']} <λ>",
            config=run["config"].model_dump(mode="json"),
            trial_number=number,
        )
        run["run_id"] = run_id
        if not run["records"]:
            continue
        store.claim_run(run_id, worker="w", host="h", stale_after=60, max_attempts=3)
        for record in run["records"]:
            store.record_epoch(run_id, record)
        store.finish_run(run_id, "complete", device="cpu", versions={"keras": "3.15.1"})


@pytest.fixture
def post_study(sqlite_url: str) -> tuple[str, str, list[dict[str, Any]]]:
    """`(url, study, runs)`: the post-like study in a SQLite file."""
    runs = post_study_runs()
    with ResultStore(sqlite_url) as result_store:
        fill_study(result_store, "table1", runs)
    return sqlite_url, "table1", runs


@pytest.fixture
def build_study() -> Callable[..., None]:
    """`build_study(url, study, runs=3, copies=1)`: `copies` copies (other seeds) of
    the first `runs` runs of the post-like study."""

    def build(url: str, study: str, *, runs: int = 3, copies: int = 1) -> None:
        with ResultStore(url) as result_store:
            for copy in range(copies):
                chosen = post_study_runs()[:runs]
                for run in chosen:
                    run["config"] = run["config"].model_copy(update={"seed": copy})
                fill_study(result_store, study, chosen)

    return build
