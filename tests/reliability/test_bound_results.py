"""A run is complete only with its epochs stored: a checkpoint folder left by a deleted
database is moved aside, never taken as the new study's outcome."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from results.store.result_store import ResultStore
from testkit.sweeping import run
from sweeps.sweep_file import load_sweep
from testkit.tiny_sweeps import write_sweep
from trainer import checkpoint
from trainer.records import TrainResult


def _the_run(url: str) -> tuple[dict, list[dict]]:
    with ResultStore(url) as store:
        (only,) = store.runs("bound")
        return only, store.epochs(only["id"])


def _leftover(folder: Path, run_key: str) -> None:
    """What a finished run of a deleted database leaves: its outcome and best weights."""
    folder.mkdir(parents=True)
    state = checkpoint.RunState(run_key, epochs_done=2, instance="a-deleted-database")
    outcome = TrainResult("completed", 2, best_val_acc=0.99, best_epoch=2)
    checkpoint.write_result(folder, outcome, state)


@pytest.mark.long
@pytest.mark.timeout(300)
def test_deleting_the_database_but_not_the_checkpoints_trains_again(tmp_path: Path) -> None:
    sweep = write_sweep(tmp_path, "bound", epochs=2, schedule=False, space="weight_decay = [0.05]",
                        train_size=128, validation_size=64)
    (trial,) = load_sweep(sweep).trials()
    study_folder = tmp_path / "checkpoints" / "bound"
    _leftover(study_folder / trial.run_key, trial.run_key)  # "start over": sweeps.db deleted, checkpoints/ kept
    url = f"sqlite:///{tmp_path / 'sweeps.db'}"

    again = run(["run", str(sweep), "--storage", url, "--log-format", "plain"], tmp_path)

    assert again.returncode == 0, again.stderr
    row, epochs = _the_run(url)
    assert row["state"] == "complete"
    assert [e["epoch"] for e in epochs] == [1, 2]  # trained, not taken from the old folder
    best = max(e["val_acc"] for e in epochs)
    (done,) = optuna.load_study(study_name="bound", storage=url).get_trials(
        states=[optuna.trial.TrialState.COMPLETE]
    )
    assert done.value == pytest.approx(best) and done.value != 0.99
    (aside,) = study_folder.glob("*.foreign-*")  # the old outcome, kept but out of the way
    assert (aside / "result.json").is_file()
    assert f"checkpoint folder of another database moved aside, not used: {aside}\n" in again.stderr
    logs = "".join(p.read_text() for p in study_folder.glob("worker-*.log"))
    assert "another database" in logs and aside.name in logs
