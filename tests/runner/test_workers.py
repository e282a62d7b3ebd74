"""Many workers on one study: each grid point trained to completion exactly once, on
SQLite and on a real PostgreSQL server; a killed worker's run taken over; a search
spread across workers."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import optuna
import pytest

from results.store import ResultStore
from sweeping import run, start, wait_for, write_sweep

SIX_POINTS = "weight_decay = [0.05, 0.1, 0.2]\nlearning_rate = [1e-3, 2e-3]"


def _check_exactly_once(url: str, study: str, points: int, epochs: int) -> None:
    with ResultStore(url) as store:
        runs = store.runs(study)
        assert len(runs) == points
        for run_ in runs:
            assert run_["state"] == "complete", run_
            assert run_["attempts"] == 1, run_  # claimed once, by one worker
            rows = store.epochs(run_["id"])
            assert [r["epoch"] for r in rows] == list(range(1, epochs + 1))
            assert all(r["trainings"] == 1 for r in rows)
    trials = optuna.load_study(study_name=study, storage=url).trials
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(trials) == len(complete) == points  # no duplicate trial in Optuna either
    assert len({t.user_attrs["run_key"] for t in complete}) == points


def test_three_workers_on_sqlite_train_each_point_once(tmp_path: Path) -> None:
    sweep = write_sweep(tmp_path, "three", epochs=2, space=SIX_POINTS)
    url = f"sqlite:///{tmp_path / 'sweeps.db'}"
    done = run(["run", str(sweep), "--storage", url, "--workers", "3"], tmp_path)
    assert done.returncode == 0, done.stderr
    _check_exactly_once(url, "three", 6, 2)
    assert "locked" not in done.stderr


@pytest.mark.postgres
def test_three_workers_on_postgresql_train_each_point_once(tmp_path: Path, postgres_url: str) -> None:
    sweep = write_sweep(tmp_path, "three_pg", epochs=2, space=SIX_POINTS)
    done = run(["run", str(sweep), "--storage", postgres_url, "--workers", "3"], tmp_path)
    assert done.returncode == 0, done.stderr
    _check_exactly_once(postgres_url, "three_pg", 6, 2)


def test_a_killed_worker_is_taken_over_from_its_checkpoint(tmp_path: Path) -> None:
    sweep = write_sweep(tmp_path, "takeover", epochs=5, space="weight_decay = [0.05, 0.2]")
    url = f"sqlite:///{tmp_path / 'sweeps.db'}"
    process = start(["run", str(sweep), "--storage", url, "--workers", "2"], tmp_path)
    event = wait_for(process, lambda e: e["event"] == "epoch" and e["epoch"] == 2)
    with ResultStore(url) as store:
        victim = next(r for r in store.runs("takeover") if r["label"] == event["label"])
    worker_pid = int(victim["worker"].split("/")[1])
    os.kill(worker_pid, signal.SIGKILL)  # its child dies with it
    assert process.wait() == 0, process.stderr.read()
    with ResultStore(url) as store:
        run_ = next(r for r in store.runs("takeover") if r["label"] == event["label"])
        rows = store.epochs(run_["id"])
    assert run_["state"] == "complete" and run_["attempts"] == 2
    assert run_["worker"].split("/")[1] != str(worker_pid)
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4, 5]
    # From the checkpoint: epoch 1 was not trained again; epoch 2's row may have been
    # written just before its checkpoint when the kill came (the epoch in flight).
    assert all(r["trainings"] == 1 for r in rows if r["epoch"] <= 1)
    assert sum(r["trainings"] > 1 for r in rows) <= 1


def test_a_search_with_two_workers_completes_n_trials_in_total(tmp_path: Path) -> None:
    sweep = tmp_path / "search.toml"
    sweep.write_text(
        write_sweep(tmp_path, "base", epochs=2).read_text().split("[space]")[0]
        .replace('name = "base"', 'name = "search"')
        + '[search]\nsampler = "tpe"\nn_trials = 4\nseed = 1\n'
        + "space.weight_decay = {low = 0.01, high = 0.3, log = true}\n"
        + "space.learning_rate = {low = 5e-4, high = 3e-3, log = true}\n",
        encoding="utf-8",
    )
    url = f"sqlite:///{tmp_path / 'sweeps.db'}"
    done = run(["run", str(sweep), "--storage", url, "--workers", "2"], tmp_path)
    assert done.returncode == 0, done.stderr
    trials = optuna.load_study(study_name="search", storage=url).trials
    assert len(trials) == 4
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    assert len({(t.params["weight_decay"], t.params["learning_rate"]) for t in trials}) == 4
    with ResultStore(url) as store:
        assert all(r["state"] == "complete" and r["config"] for r in store.runs("search"))
