"""The results store: registration, claims, heartbeats, epoch upserts, schema, URLs.

Runs on SQLite, and on PostgreSQL too when SWEEP_TEST_POSTGRES_URL is set.
"""

from __future__ import annotations

import math
import multiprocessing
import time
import uuid
from datetime import UTC

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.exc import OperationalError

from results.store import schema
from results.store.models import EPOCH_FIELDS
from results.store.result_store import ResultStore, _retrying
from sweeps.errors import InputError

CONFIG = {"weight_decay": 0.1, "learning_rate": 8e-4, "epochs": 60}


def _record(epoch: int, **values: float) -> dict[str, float]:
    record = {
        "epoch": epoch,
        "loss": 1.0,
        "acc": 0.5,
        "val_loss": 1.1,
        "val_acc": 0.45,
        "lr": 8e-4,
        "seconds": 10.0,
        "images_per_second": 5000.0,
    }
    record.update(values)
    return record


def _register(store: ResultStore, key: str = "k1", study: str = "s") -> int:
    return store.register_run(study, key, label="1", comment="c", config=CONFIG)


def test_register_run_is_idempotent(store):
    first = store.register_run("s", "k1", label="3A", comment="a run", config=CONFIG, trial_number=4)
    again = store.register_run("s", "k1", label="other", comment="", config={})
    other_study = store.register_run("t", "k1", label="3A", comment="", config=CONFIG)
    assert again == first and other_study != first
    run = store.get_run(first)
    assert (run["study"], run["run_key"], run["label"], run["comment"]) == ("s", "k1", "3A", "a run")
    assert run["config"] == CONFIG and run["trial_number"] == 4
    assert (run["state"], run["attempts"], run["worker"], run["started"]) == ("waiting", 0, None, None)
    assert run["registered"].tzinfo == UTC
    assert store.run_id("s", "k1") == first and store.run_id("s", "nope") is None
    assert [r["id"] for r in store.runs("s")] == [first]
    assert store.studies() == ["s", "t"]


def test_claim_run_hands_a_run_to_one_worker(store):
    run_id = _register(store)
    assert store.claim_run(run_id, worker="w1", host="h1", stale_after=60, max_attempts=3)
    run = store.get_run(run_id)
    assert (run["state"], run["worker"], run["host"], run["attempts"]) == ("running", "w1", "h1", 1)
    assert run["heartbeat_at"].tzinfo == UTC and run["started"] is not None
    # Another worker is refused while w1's heartbeat is fresh …
    assert not store.claim_run(run_id, worker="w2", host="h2", stale_after=60, max_attempts=3)
    assert store.heartbeat(run_id, "w1") and not store.heartbeat(run_id, "w2")
    # … and the same worker, restarted, takes its run back.
    assert store.claim_run(run_id, worker="w1", host="h1", stale_after=60, max_attempts=3)
    assert store.get_run(run_id)["attempts"] == 2


def test_claim_first_takes_the_first_free_run_in_the_order_given(store):
    ids = [store.register_run("s", f"k{i}", label=str(i), comment=None, config=CONFIG) for i in range(3)]
    order = [ids[2], ids[0], ids[1]]
    assert store.claim_first(order, worker="w1", host="h", stale_after=60, max_attempts=3) == (ids[2], 1)
    assert store.claim_first(order, worker="w2", host="h", stale_after=60, max_attempts=3) == (ids[0], 1)
    assert store.get_run(ids[0])["worker"] == "w2" and store.get_run(ids[2])["worker"] == "w1"
    assert store.claim_first([ids[2], ids[0]], worker="w3", host="h", stale_after=60, max_attempts=3) is None
    assert store.claim_first([], worker="w3", host="h", stale_after=60, max_attempts=3) is None


@pytest.mark.timeout(120)
def test_workers_racing_for_the_same_runs_each_take_another(storage_url):
    import threading

    runs, workers = 48, 16
    with ResultStore(storage_url) as setup:
        ids = [setup.register_run("s", f"k{i}", label=str(i), comment=None, config=CONFIG) for i in range(runs)]
    taken: list[tuple[str, int]] = []
    start = threading.Barrier(workers)

    def work(name: str) -> None:
        with ResultStore(storage_url) as store:
            start.wait()
            calls = 0
            while True:
                calls += 1
                # A worker trains one run at a time (and would take its own run back).
                holder = f"{name}-{calls}"
                claimed = store.claim_first(ids, worker=holder, host="h", stale_after=60, max_attempts=3)
                if claimed is None:
                    break
                taken.append((holder, claimed[0]))

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(run_id for _, run_id in taken) == sorted(ids)  # every run, each once
    with ResultStore(storage_url) as store:
        assert {(r["worker"], r["id"]) for r in store.runs("s")} == set(taken)
        assert all(r["attempts"] == 1 for r in store.runs("s"))


@pytest.mark.timeout(60)
@pytest.mark.postgres
def test_a_claim_skips_a_run_another_claim_is_taking_instead_of_waiting(postgres_url):
    import threading

    from sqlalchemy import create_engine, text

    with ResultStore(postgres_url) as store:
        ids = [store.register_run("s", f"k{i}", label=str(i), comment=None, config=CONFIG) for i in range(2)]
        other = create_engine(postgres_url)
        with other.begin() as taking:  # another worker's claim of the first run, mid-statement
            taking.execute(text("SELECT id FROM runs WHERE id = :id FOR UPDATE"), {"id": ids[0]})
            result: list = []
            claim = threading.Thread(target=lambda: result.append(
                store.claim_first(ids, worker="w2", host="h", stale_after=60, max_attempts=3)))
            claim.start()
            claim.join(timeout=10)
            assert not claim.is_alive(), "the claim waited for the locked run"
            assert result == [(ids[1], 1)]
        other.dispose()


def test_a_stale_run_is_taken_over(store):
    run_id = _register(store)
    assert store.claim_run(run_id, worker="w1", host="h1", stale_after=60, max_attempts=5)
    started = store.get_run(run_id)["started"]
    time.sleep(0.01)
    assert store.claim_run(run_id, worker="w2", host="h2", stale_after=0.001, max_attempts=5)
    run = store.get_run(run_id)
    assert (run["worker"], run["host"], run["attempts"]) == ("w2", "h2", 2)
    assert run["started"] == started  # the first claim's start stays
    assert not store.heartbeat(run_id, "w1")  # w1 learns it lost the run
    assert store.heartbeat(run_id, "w2")


def test_claims_stop_at_max_attempts_and_at_final_states(store):
    run_id = _register(store)
    assert store.claim_run(run_id, worker="w", host="h", stale_after=60, max_attempts=1)
    store.finish_run(run_id, "failed", failure_reason="out of memory")
    assert not store.claim_run(run_id, worker="w", host="h", stale_after=60, max_attempts=1)
    # A failed run with attempts left is handed out again, clean.
    assert store.claim_run(run_id, worker="w", host="h", stale_after=60, max_attempts=2)
    run = store.get_run(run_id)
    assert (run["state"], run["failure_reason"], run["finished"]) == ("running", None, None)
    for final in ("complete", "diverged", "pruned"):
        store.finish_run(run_id, final)
        assert not store.claim_run(run_id, worker="w", host="h", stale_after=0, max_attempts=99)
        assert not store.heartbeat(run_id, "w")
    store.finish_run(run_id, "stopped")
    assert store.claim_run(run_id, worker="w", host="h", stale_after=0, max_attempts=99)


def test_a_run_stopped_by_ctrl_c_is_claimable_beyond_max_attempts(store):
    run_id = _register(store)
    for _ in range(3):  # three Ctrl-C's: the user's choice, not a failure of the run
        assert store.claim_run(run_id, worker="w", host="h", stale_after=60, max_attempts=1)
        store.finish_run(run_id, "stopped")
    assert store.get_run(run_id)["attempts"] == 3
    store.claim_run(run_id, worker="w", host="h", stale_after=60, max_attempts=1)
    store.finish_run(run_id, "failed", failure_reason="segfault")
    assert not store.claim_run(run_id, worker="w", host="h", stale_after=60, max_attempts=4)


def test_finish_run(store):
    run_id = _register(store)
    store.claim_run(run_id, worker="w", host="h", stale_after=60, max_attempts=2)
    store.finish_run(
        run_id, "diverged", failure_reason="loss is NaN", device="GPU H200", versions={"keras": "3.15.1"}
    )
    store.finish_run(run_id, "diverged", failure_reason="loss is NaN")  # device, versions kept
    run = store.get_run(run_id)
    assert (run["state"], run["failure_reason"], run["device"]) == ("diverged", "loss is NaN", "GPU H200")
    assert run["versions"] == {"keras": "3.15.1"} and run["finished"] >= run["started"]
    with pytest.raises(ValueError, match="state must be one of"):
        store.finish_run(run_id, "done")
    with pytest.raises(KeyError):
        store.finish_run(run_id + 100, "complete")
    store.set_trial_number(run_id, 7)
    assert store.get_run(run_id)["trial_number"] == 7
    with pytest.raises(KeyError):
        store.get_run(run_id + 100)


def test_update_run_fills_in_a_search_trials_label_and_config(store):
    run_id = store.register_run("s", "search-1", label="#1", comment="", config={})
    store.update_run(run_id, label="1", config=CONFIG)
    store.update_run(run_id)  # nothing to change
    run = store.get_run(run_id)
    assert (run["label"], run["config"], run["comment"], run["run_key"]) == ("1", CONFIG, "", "search-1")
    with pytest.raises(KeyError):
        store.update_run(run_id + 100, label="x")


def test_a_retrained_epoch_replaces_its_row(store):
    run_id = _register(store)
    store.record_epoch(run_id, _record(1))
    store.record_epoch(run_id, _record(2, val_acc=0.6))
    store.record_epoch(run_id, _record(2, val_acc=0.7, loss=0.8, lr=4e-4))  # resumed from epoch 1
    epochs = store.epochs(run_id)
    assert [e["epoch"] for e in epochs] == [1, 2]
    assert (epochs[1]["val_acc"], epochs[1]["loss"], epochs[1]["lr"]) == (0.7, 0.8, 4e-4)
    assert list(epochs[0]) == [*EPOCH_FIELDS, "trainings"]
    assert [e["trainings"] for e in epochs] == [1, 2]  # epoch 2 was trained twice


def test_epoch_records_nan_extra_keys_and_bad_input(store):
    run_id = _register(store)
    store.record_epoch(run_id, {**_record(1, loss=math.nan, val_loss=math.inf), "learning_rate": 1.0})
    epoch = store.epochs(run_id)[0]
    assert epoch["loss"] is None and epoch["val_loss"] == math.inf
    with pytest.raises(ValueError, match="missing val_acc"):
        store.record_epoch(run_id, {k: v for k, v in _record(2).items() if k != "val_acc"})
    with pytest.raises(ValueError, match="epoch must be >= 1"):
        store.record_epoch(run_id, _record(0))
    with pytest.raises(KeyError):  # foreign keys are on
        store.record_epoch(run_id + 100, _record(1))


def _claim_all(url: str, worker: str, run_ids: list[int], queue: multiprocessing.Queue) -> None:
    store = ResultStore(url)
    claimed = [
        run_id
        for run_id in run_ids
        if store.claim_run(run_id, worker=worker, host="h", stale_after=3600, max_attempts=5)
    ]
    store.close()
    queue.put(claimed)


def test_several_workers_each_claim_a_run_exactly_once(store, storage_url):
    run_ids = [_register(store, key=f"k{i}") for i in range(30)]
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    workers = [
        context.Process(target=_claim_all, args=(storage_url, f"w{i}", run_ids, queue)) for i in range(4)
    ]
    for worker in workers:
        worker.start()
    claimed = [run_id for _ in workers for run_id in queue.get(timeout=120)]
    for worker in workers:
        worker.join(timeout=60)
    assert sorted(claimed) == run_ids
    assert {store.get_run(run_id)["attempts"] for run_id in run_ids} == {1}


def _train_one(url: str, worker: int, queue: multiprocessing.Queue) -> None:
    try:
        store = ResultStore(url)  # several open a fresh database at once
        run_id = store.register_run("s", f"k{worker}", label=str(worker), comment="", config={"w": worker})
        assert store.claim_run(run_id, worker=f"w{worker}", host="h", stale_after=60, max_attempts=2)
        for epoch in range(1, 31):
            store.record_epoch(run_id, _record(epoch))
            assert store.heartbeat(run_id, f"w{worker}")
        store.finish_run(run_id, "complete")
        store.close()
        queue.put("ok")
    except Exception as error:  # reported to the test process
        queue.put(repr(error))


def test_workers_create_and_write_one_database_at_once(storage_url):
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    workers = [context.Process(target=_train_one, args=(storage_url, i, queue)) for i in range(4)]
    for worker in workers:
        worker.start()
    outcomes = [queue.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
    assert outcomes == ["ok"] * 4
    with ResultStore(storage_url) as store:
        runs = store.runs("s")
        assert [run["state"] for run in runs] == ["complete"] * 4
        assert all(len(store.epochs(run["id"])) == 30 for run in runs)


def test_sqlite_connections_use_wal_a_busy_timeout_and_foreign_keys(sqlite_url):
    store = ResultStore(sqlite_url)
    with store.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    store.close()


def test_a_lock_is_retried_briefly():
    calls = []

    class Fake:
        @_retrying
        def write(self) -> str:
            calls.append(1)
            if len(calls) < 3:
                raise OperationalError("UPDATE", {}, Exception("database is locked"))
            return "done"

        @_retrying
        def broken(self) -> None:
            calls.append(1)
            raise OperationalError("UPDATE", {}, Exception("no such table: runs"))

    assert Fake().write() == "done" and len(calls) == 3
    calls.clear()
    with pytest.raises(OperationalError):
        Fake().broken()
    assert len(calls) == 1


@pytest.mark.parametrize(
    "url, message",
    [
        ("sweeps.db", "not a database URL"),
        ("mysql+pymysql://u@h/db", r"mysql\+pymysql is not supported"),
        ("postgresql+psycopg2://u@h/db", "must be psycopg"),
        ("postgresql+psycopg://u@h", "no database name"),
        ("sqlite:////no/such/folder/sweeps.db", "folder /no/such/folder does not exist"),
    ],
)
def test_bad_urls_say_what_is_allowed(url, message):
    # Each fails before any connection is tried.
    with pytest.raises(InputError, match=message) as error:
        ResultStore(url)
    assert "\n" not in str(error.value) and str(error.value).startswith("--storage")


def test_reading_a_missing_file_creates_nothing(tmp_path):
    with pytest.raises(InputError, match="no database file"):
        ResultStore(f"sqlite:///{tmp_path / 'typo.db'}", create=False)
    assert list(tmp_path.iterdir()) == []


def test_a_password_never_shows():
    with pytest.raises(InputError) as error:
        ResultStore("postgresql+psycopg2://user:secret@host/db")
    assert "secret" not in str(error.value)


def test_the_migration_head_is_the_schema_revision():
    assert schema.head_revision() == schema.SCHEMA_REVISION


def _schema_of(engine) -> dict:
    inspector = inspect(engine)
    return {
        table: (
            [(c["name"], str(c["type"]), c["nullable"]) for c in inspector.get_columns(table)],
            sorted(i["name"] for i in inspector.get_indexes(table)),
            inspector.get_pk_constraint(table)["constrained_columns"],
            sorted(u["name"] for u in inspector.get_unique_constraints(table)),
        )
        for table in ("runs", "epochs")
    }


def test_the_migrations_build_the_models_schema(storage_url, tmp_path, reset_postgres):
    if storage_url.startswith("sqlite"):
        # An empty SQLite database (an empty file is refused as not a database).
        import sqlite3

        with sqlite3.connect(tmp_path / "sweeps.db") as connection:
            connection.execute("PRAGMA user_version = 1")
    assert schema.main(["upgrade", "--storage", storage_url]) == 0
    migrated = ResultStore(storage_url)  # accepted as the current revision
    migrated_schema = _schema_of(migrated.engine)
    # The models and the migrations do not drift apart (what `alembic check` checks).
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from results.store.models import Base

    with migrated.engine.connect() as connection:
        ours = {"include_name": lambda name, kind, _: kind != "table" or name in Base.metadata.tables}
        drift = compare_metadata(MigrationContext.configure(connection, opts=ours), Base.metadata)
    if storage_url.startswith("sqlite"):
        # Revision 0006 widens runs.label on servers only: SQLite never enforces a
        # VARCHAR's length, and its ALTER would copy `runs` (and cascade-delete epochs).
        drift = [d for d in drift if not (isinstance(d, list) and d[0][:4] == ("modify_type", None, "runs", "label"))]
    assert drift == []
    migrated.close()
    fresh_url = f"sqlite:///{tmp_path / 'fresh.db'}" if storage_url.startswith("sqlite") else storage_url
    if not storage_url.startswith("sqlite"):
        reset_postgres(storage_url)
    fresh = ResultStore(fresh_url)
    fresh_schema = _schema_of(fresh.engine)
    if storage_url.startswith("sqlite"):  # the label's declared length, as above
        for tables in (fresh_schema, migrated_schema):
            columns = tables["runs"][0]
            tables["runs"] = ([(n, "VARCHAR" if n == "label" else k, x) for n, k, x in columns], *tables["runs"][1:])
    assert fresh_schema == migrated_schema
    fresh.close()


def _stamp(store: ResultStore, revision: str) -> None:
    with store.engine.begin() as connection:
        connection.execute(text(f"UPDATE {schema.VERSION_TABLE} SET version_num = :r"), {"r": revision})


def test_a_database_of_a_newer_schema_is_refused(store, storage_url):
    _stamp(store, "0099")
    store.close()
    with pytest.raises(InputError, match="revision 0099, which this keras-sweep does not know"):
        ResultStore(storage_url)


def test_a_database_of_an_older_schema_gets_the_upgrade_command(store, storage_url, monkeypatch):
    _stamp(store, "0000")
    store.close()
    monkeypatch.setattr(schema, "known_revisions", lambda: {"0000", schema.SCHEMA_REVISION})
    with pytest.raises(
        InputError, match=rf"revision 0000, this keras-sweep needs {schema.SCHEMA_REVISION}.*sweep db upgrade"
    ):
        ResultStore(storage_url)


def test_unversioned_tables_are_refused(store, storage_url):
    with store.engine.begin() as connection:
        connection.execute(text(f"DELETE FROM {schema.VERSION_TABLE}"))
    store.close()
    with pytest.raises(InputError, match="have no schema revision"):
        ResultStore(storage_url)


def test_the_store_and_optuna_share_one_database(storage_url):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    name = f"study-{uuid.uuid4().hex[:8]}"
    store = ResultStore(storage_url)
    run_id = store.register_run(name, "k", label="0", comment="", config=CONFIG)
    study = optuna.create_study(storage=storage_url, study_name=name)
    study.set_user_attr("report_threshold", 0.93)
    study.set_user_attr("report_thresholds", [0.9, 0.93])
    study.set_user_attr("report_swing_start", 8)
    study.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=2)
    store.close()
    store = ResultStore(storage_url)  # after Optuna created its tables
    assert store.get_run(run_id)["study"] == name
    from results.report.study_settings import ReportSettings, report_settings

    assert report_settings(store, name) == ReportSettings(threshold=0.93, thresholds=(0.9, 0.93), swing_start=8)
    assert report_settings(store, "no-such-study") == ReportSettings(0.92, (0.92, 0.93), 5)
    store.close()
    assert len(optuna.load_study(study_name=name, storage=storage_url).trials) == 2
