"""Schema revision 0004_slurm: the Slurm task of each attempt, added to `runs` without
losing a row, and taken away again without losing one either."""

from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import create_engine, inspect, text

from results.store import schema
from results.store.result_store import ResultStore


@pytest.mark.timeout(120)
def test_a_revision_0002_database_gets_the_slurm_column_and_keeps_every_row(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    (tmp_path / "old.db").touch()
    command.upgrade(schema.alembic_config(url), "0002")
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO runs (id, study, run_key, label, comment, config, state, attempts, registered, worker) "
            "VALUES (1, 's', 'k', '7', '', '{}', 'running', 1, '2026-12-01 00:00:00', 'w')"
        ))
        connection.execute(text(
            "INSERT INTO epochs (run_id, epoch, loss, acc, val_loss, val_acc, lr, seconds, "
            "images_per_second, trainings) VALUES (1, 1, 1.0, 0.5, 0.9, 0.5, 8e-4, 10, 100, 1)"
        ))
    engine.dispose()
    with pytest.raises(Exception, match="sweep db upgrade"):  # an old database is refused until upgraded
        ResultStore(url)

    assert schema.main(["upgrade", "--storage", url]) == 0
    with ResultStore(url) as store:
        assert store.get_run(1)["slurm_job"] is None  # no Slurm then
        assert store.set_slurm_job(1, "w", "4242_3") and not store.set_slurm_job(1, "other", "1_0")
        assert store.get_run(1)["slurm_job"] == "4242_3" and len(store.epochs(1)) == 1

    command.downgrade(schema.alembic_config(url), "0002")
    engine = create_engine(url)
    assert "slurm_job" not in {column["name"] for column in inspect(engine).get_columns("runs")}
    with engine.connect() as connection:  # `epochs` hangs off `runs`: none of its rows went
        assert connection.execute(text("SELECT run_id, epoch FROM epochs")).all() == [(1, 1)]
    engine.dispose()
