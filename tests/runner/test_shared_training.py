"""Issue 19: runs that differ only in what they measure (here m) share one training.

Counts prove it, never wall time: one child process (one run folder with a training
log), one checkpoint folder, every epoch trained once, three rows and three Optuna
trials with identical raw columns and different EMA columns."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import optuna
import pytest

from results.store.result_store import ResultStore
from testkit.sweeping import kill, run, start, wait_for, write_sweep

RAW = ("loss", "acc", "val_loss", "val_acc", "weight_norm", "val_acc_bn", "angle_per_step")


@pytest.mark.long  # a whole sweep, its worker and child: the slowest test of `make test` (44-69 s)
@pytest.mark.timeout(400)
def test_an_m_sweep_trains_once(tmp_path: Path) -> None:
    sweep = write_sweep(tmp_path, "ms", epochs=2, space="ema_momentum = [0.5, 0.9, 0.99]", train_size=256)
    url = f"sqlite:///{tmp_path / 'sweeps.db'}"
    done = run(["run", str(sweep), "--storage", url, "--workers", "1"], tmp_path)
    assert done.returncode == 0, done.stderr
    # The summary's rows are the same for the three; a second table tells them apart.
    shared = done.stdout[done.stdout.index("Runs that shared one training"):]
    assert all(label in shared for label in ("m=0.50", "m=0.90", "m=0.99")) and "val_acc_ema_best" in shared
    with ResultStore(url) as store:
        runs = [{**r, "epochs": store.epochs(r["id"])} for r in store.runs("ms")]
    assert len(runs) == 3 and all(r["state"] == "complete" and r["attempts"] == 1 for r in runs), runs
    assert len({r["run_key"] for r in runs}) == 3  # each its own run key, row and trial
    folders = [p for p in (tmp_path / "checkpoints" / "ms").iterdir() if p.is_dir()]
    trained = [p for p in folders if (p / "train.log").exists()]
    assert len(trained) == 1, folders  # one child trained them all
    lead = trained[0]
    assert len(json.loads((lead / "group.json").read_text())["members"]) == 2
    assert json.loads((lead / "result.json").read_text())["result"]["epochs_completed"] == 2
    for r in runs:
        assert [(e["epoch"], e["trainings"]) for e in r["epochs"]] == [(1, 1), (2, 1)]
    for column in RAW:
        assert len({tuple(e[column] for e in r["epochs"]) for r in runs}) == 1, column
    assert len({tuple(e["val_loss_ema"] for e in r["epochs"]) for r in runs}) == 3
    horizons = sorted(r["epochs"][0]["ema_horizon_epochs"] for r in runs)
    assert horizons == pytest.approx([1 / (0.5 * 4), 1 / (0.1 * 4), 1 / (0.01 * 4)])  # 256/64 = 4 steps
    trials = optuna.load_study(study_name="ms", storage=url).trials
    assert sorted(t.state.name for t in trials) == ["COMPLETE"] * 3
    assert len({t.user_attrs["val_acc_ema_best"] for t in trials}) >= 2


@pytest.mark.long
@pytest.mark.timeout(400)
def test_a_killed_workers_shared_training_continues_as_one(tmp_path: Path) -> None:
    """Two workers, one group of two runs: the worker that trains it is killed in epoch
    2; the other takes over the lead and its member at once and resumes the group from
    its checkpoint in one child, instead of training the member again alone."""
    sweep = write_sweep(tmp_path, "mk", epochs=4, space="ema_momentum = [0.9, 0.99]")
    url = f"sqlite:///{tmp_path / 'sweeps.db'}"
    process = start(["run", str(sweep), "--storage", url, "--workers", "2"], tmp_path)
    try:
        event = wait_for(process, lambda e: e["event"] == "epoch" and e["epoch"] == 2)
        with ResultStore(url) as store:
            holder = next(r for r in store.runs("mk") if r["label"] == event["label"])["worker"]
        os.kill(int(holder.split("/")[1]), signal.SIGKILL)  # its child dies with it
        assert process.wait(timeout=300) == 0, process.stderr.read()
    finally:
        kill(process)
    with ResultStore(url) as store:
        runs = [{**r, "epochs": store.epochs(r["id"])} for r in store.runs("mk")]
    assert all(r["state"] == "complete" and r["attempts"] == 2 and r["worker"] != holder for r in runs), runs
    folders = [p for p in (tmp_path / "checkpoints" / "mk").iterdir() if p.is_dir()]
    assert len([p for p in folders if (p / "train.log").exists()]) == 1, folders  # one training folder
    for r in runs:  # resumed from the group's checkpoint: epoch 1 not trained again
        assert [e["epoch"] for e in r["epochs"]] == [1, 2, 3, 4]
        assert r["epochs"][0]["trainings"] == 1 and sum(e["trainings"] > 1 for e in r["epochs"]) <= 1
    for column in RAW:
        assert len({tuple(e[column] for e in r["epochs"]) for r in runs}) == 1, column
    # In Optuna, per run: the killed attempt's trial failed, the survivor's complete.
    trials = optuna.load_study(study_name="mk", storage=url).trials
    for r in runs:
        assert sorted(t.state.name for t in trials if t.user_attrs["run_key"] == r["run_key"]) == ["COMPLETE", "FAIL"]
