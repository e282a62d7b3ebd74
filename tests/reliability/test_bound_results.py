"""A run is complete only with its epochs stored: a checkpoint folder left by a deleted
database is moved aside, never taken as the new study's outcome."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from results.store import ResultStore
from sweeping import run

TINY = """name = "bound"
[train]
dataset = "digits"
depth = 11
batch_size = 64
train_size = 128
validation_size = 64
epochs = 2
flip = false
[space]
weight_decay = [0.05]
"""


def _the_run(url: str) -> tuple[dict, list[dict]]:
    with ResultStore(url) as store:
        (only,) = store.runs("bound")
        return only, store.epochs(only["id"])


@pytest.mark.timeout(300)
def test_deleting_the_database_but_not_the_checkpoints_trains_again(tmp_path: Path) -> None:
    sweep = tmp_path / "bound.toml"
    sweep.write_text(TINY, encoding="utf-8")
    url = f"sqlite:///{tmp_path / 'sweeps.db'}"
    first = run(["run", str(sweep), "--storage", url, "--log-format", "plain"], tmp_path)
    assert first.returncode == 0, first.stderr
    for leftover in tmp_path.glob("sweeps.db*"):
        leftover.unlink()  # "start over", the checkpoints/ folder stays

    again = run(["run", str(sweep), "--storage", url, "--log-format", "plain"], tmp_path)

    assert again.returncode == 0, again.stderr
    row, epochs = _the_run(url)
    assert row["state"] == "complete"
    assert [e["epoch"] for e in epochs] == [1, 2]  # trained, not taken from the old folder
    best = max(e["val_acc"] for e in epochs)
    (trial,) = optuna.load_study(study_name="bound", storage=url).get_trials(
        states=[optuna.trial.TrialState.COMPLETE]
    )
    assert trial.value == pytest.approx(best) and trial.value > 0.0
    study_folder = tmp_path / "checkpoints" / "bound"
    (aside,) = study_folder.glob("*.foreign-*")  # the old outcome, kept but out of the way
    assert (aside / "result.json").is_file()
    assert f"checkpoint folder of another database moved aside, not used: {aside}\n" in again.stderr
    logs = "".join(p.read_text() for p in study_folder.glob("worker-*.log"))
    assert "another database" in logs and aside.name in logs
