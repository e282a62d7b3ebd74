"""Schema revision 0006_wide_labels: labels as long as a grid makes them are stored whole,
on PostgreSQL (which enforced the old 64 characters) and after an upgrade from 0002."""

from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import create_engine, text

from results.store import schema
from results.store.result_store import ResultStore
from sweeps.errors import InputError
from sweeps.limits import MAX_LABEL_CHARS
from sweeps.sweep_file import parse_sweep

# Nine swept keys, as the researcher wrote them: labels of about 90 characters.
NINE_KEYS = """name = "nine"
[train]
dataset = "digits"
depth = 11
epochs = 2
[space]
weight_decay = [0.05, 0.1]
learning_rate = [8e-4, 2e-3]
ema_momentum = [0.99]
seed = [0]
batch_size = [32]
shift = [0.07]
beta_1 = [0.9]
beta_2 = [0.999]
l2 = [0.0]
"""


def _upgraded_from_0002(url: str) -> None:
    """A database at revision 0002 with one run, then `sweep db upgrade`."""
    command.upgrade(schema.alembic_config(url), "0002")
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO runs (study, run_key, label, comment, config, state, attempts, registered) "
            "VALUES ('s', 'k', '7', '', '{}', 'complete', 1, '2026-11-29 00:00:00')"
        ))
        run_id = connection.execute(text("SELECT id FROM runs")).scalar_one()
        connection.execute(text(
            "INSERT INTO epochs (run_id, epoch, loss, acc, val_loss, val_acc, lr, seconds, "
            "images_per_second, trainings) VALUES (:r, 1, 1.0, 0.5, 0.9, 0.6, 8e-4, 10, 100, 1)"
        ), {"r": run_id})
    engine.dispose()
    with pytest.raises(InputError, match="sweep db upgrade"):  # refused until upgraded
        ResultStore(url)
    assert schema.main(["upgrade", "--storage", url]) == 0


def _store_long_labels(url: str) -> None:
    labels = [trial.label for trial in parse_sweep(NINE_KEYS, "nine.toml").trials()]
    assert len(labels[0]) > 64  # what the old column refused
    labels.append("x" * MAX_LABEL_CHARS)
    with ResultStore(url) as store:
        old = store.runs("s")
        assert [run["label"] for run in old] == ["7"]  # the old rows kept, epochs too
        assert [row["val_acc"] for row in store.epochs(old[0]["id"])] == [0.6]
        for i, label in enumerate(labels):
            store.register_run("nine", f"key{i}", label=label, comment=None, config={})
        assert [run["label"] for run in store.runs("nine")] == labels


@pytest.mark.timeout(120)
def test_long_labels_after_an_upgrade_on_postgresql(postgres_url):
    _upgraded_from_0002(postgres_url)
    _store_long_labels(postgres_url)


@pytest.mark.timeout(60)
def test_long_labels_after_an_upgrade_on_sqlite(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    (tmp_path / "old.db").touch()
    _upgraded_from_0002(url)
    _store_long_labels(url)


def test_a_label_over_the_limit_is_refused_by_check():
    text_ = NINE_KEYS.replace("[space]", "[[runs]]\nlabel = \"" + "y" * (MAX_LABEL_CHARS + 1) + "\"\n[space]")
    with pytest.raises(InputError, match=rf"runs\[0\]\.label: 1,001 characters: a label has at most {MAX_LABEL_CHARS:,}"):
        parse_sweep(text_, "long.toml")
