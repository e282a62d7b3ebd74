"""Schema revision 0002: the new epoch columns, and an upgrade that keeps every row."""

from __future__ import annotations

import math

import pytest
from alembic import command
from sqlalchemy import create_engine, inspect, text

from results.store import schema
from results.report.frames import read_study
from results.store.models import EPOCHS, EPOCH_FIELDS, OPTIONAL_EPOCH_FIELDS, REQUIRED_EPOCH_FIELDS
from results.store.result_store import ResultStore
from trainer.records import EpochRecord

# What revision 0002 added (frozen: later revisions append after these).
NEW_COLUMNS = (
    "val_loss_ema", "val_acc_ema", "test_loss", "test_acc", "weight_norm", "weight_norm_stage1",
    "weight_norm_stage2", "weight_norm_stage3", "effective_lr", "angular_update",
)


def test_the_epoch_record_and_the_epochs_table_have_the_same_columns():
    record = EpochRecord(epoch=1, loss=1.0, acc=0.5, val_loss=1.1, val_acc=0.4, lr=1e-3, seconds=1.0,
                         images_per_second=10.0)
    assert tuple(record.as_dict()) == EPOCH_FIELDS
    assert OPTIONAL_EPOCH_FIELDS[:len(NEW_COLUMNS)] == NEW_COLUMNS
    assert all(math.isnan(record.as_dict()[name]) for name in OPTIONAL_EPOCH_FIELDS)
    # The table is generated from the record, in the migrations' column order.
    assert tuple(EPOCHS.c.keys()) == ("run_id", *REQUIRED_EPOCH_FIELDS, "trainings", *OPTIONAL_EPOCH_FIELDS, "attempt")


@pytest.mark.timeout(120)
def test_upgrading_a_revision_0001_database_keeps_every_row(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    (tmp_path / "old.db").touch()
    command.upgrade(schema.alembic_config(url), "0001")
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO runs (id, study, run_key, label, comment, config, state, attempts, registered) "
            "VALUES (1, 's', 'k', '7', '', '{}', 'complete', 1, '2026-11-29 00:00:00')"
        ))
        for epoch in (1, 2):
            connection.execute(text(
                "INSERT INTO epochs (run_id, epoch, loss, acc, val_loss, val_acc, lr, seconds, "
                "images_per_second, trainings) VALUES (1, :e, 1.0, 0.5, 0.9, :v, 8e-4, 10, 100, 1)"
            ), {"e": epoch, "v": [0.5, 0.6][epoch - 1]})
    with pytest.raises(Exception, match="sweep db upgrade"):  # refused until upgraded
        ResultStore(url)

    assert schema.main(["upgrade", "--storage", url]) == 0
    columns = {column["name"] for column in inspect(engine).get_columns("epochs")}
    assert set(NEW_COLUMNS) <= columns
    engine.dispose()
    store = ResultStore(url)
    runs, epochs = read_study(store, "s")
    assert list(epochs["val_acc"]) == [0.5, 0.6] and list(epochs["loss"]) == [1.0, 1.0]
    assert epochs[list(NEW_COLUMNS)].isna().all().all()  # not measured then
    # A new epoch of the old run stores the new measurements; inf stays inf.
    store.record_epoch(1, {**epochs.iloc[0][list(REQUIRED_EPOCH_FIELDS)].to_dict(), "epoch": 3,
                           "val_acc_ema": 0.7, "weight_norm": math.inf, "angular_update": math.nan})
    third = store.epochs(1)[2]
    assert (third["val_acc_ema"], third["weight_norm"], third["angular_update"]) == (0.7, math.inf, None)
    store.close()
    # And back: SQLite drops the columns by copying the table, every row with it.
    command.downgrade(schema.alembic_config(url), "0001")
    engine = create_engine(url)
    assert not set(NEW_COLUMNS) & {c["name"] for c in inspect(engine).get_columns("epochs")}
    with engine.connect() as connection:
        assert connection.execute(text("SELECT epoch, val_acc FROM epochs ORDER BY epoch")).all() == [
            (1, 0.5), (2, 0.6), (3, 0.5)]
    engine.dispose()


@pytest.mark.timeout(120)
def test_revision_0003_adds_the_batchnorm_columns_and_keeps_every_row(tmp_path):
    from importlib import import_module

    added = import_module("results.store.migrations.versions.0003_bn_measurements").COLUMNS
    assert OPTIONAL_EPOCH_FIELDS[-len(added):] == added  # the record's newest fields, in order
    url = f"sqlite:///{tmp_path / 'old.db'}"
    (tmp_path / "old.db").touch()
    command.upgrade(schema.alembic_config(url), "0002")
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO runs (id, study, run_key, label, comment, config, state, attempts, registered) "
            "VALUES (1, 's', 'k', '7', '', '{}', 'complete', 1, '2026-11-29 00:00:00')"
        ))
        connection.execute(text(
            "INSERT INTO epochs (run_id, epoch, loss, acc, val_loss, val_acc, lr, seconds, "
            "images_per_second, trainings, val_acc_ema) VALUES (1, 1, 1.0, 0.5, 0.9, 0.5, 8e-4, 10, 100, 1, 0.4)"
        ))
    engine.dispose()
    assert schema.main(["upgrade", "--storage", url]) == 0
    store = ResultStore(url)
    (old,) = store.epochs(1)
    assert old["val_acc_ema"] == 0.4 and all(old[name] is None for name in added)
    store.record_epoch(1, {**{k: old[k] for k in REQUIRED_EPOCH_FIELDS}, "epoch": 2, "val_acc_bn": 0.8,
                           "angle_per_step": 0.01, "train_loss_eval": math.nan})
    second = store.epochs(1)[1]
    assert (second["val_acc_bn"], second["angle_per_step"], second["train_loss_eval"]) == (0.8, 0.01, None)
    store.close()
    command.downgrade(schema.alembic_config(url), "0002")
    engine = create_engine(url)
    assert not set(added) & {c["name"] for c in inspect(engine).get_columns("epochs")}
    engine.dispose()
