"""Many workers on one study: each grid point trained to completion exactly once, on
SQLite and on a real PostgreSQL server; a killed worker's run taken over; a search
spread across workers."""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path

import optuna
import pytest

from results.store import ResultStore
from sweeping import kill, run, start, wait_for, write_sweep

# As many points as workers, started together: they race for every claim.
THREE_POINTS = "weight_decay = [0.05, 0.1, 0.2]"
LOCKED = re.compile(r"is locked")


def _worker_logs(folder: Path, study: str) -> list[str]:
    """The workers' logs, beside the checkpoints."""
    logs = list((folder / "checkpoints" / study).glob("worker-*.log"))
    assert logs, "no worker log to read"
    return [log.read_text(errors="replace") for log in logs]


def _lock_errors(folder: Path, study: str, *outputs: str) -> list[str]:
    """Lines saying SQLite's "database is locked" in the command's output, the workers'
    logs and the runs' training logs."""
    runs = [log.read_text(errors="replace") for log in (folder / "checkpoints" / study).glob("*/train.log")]
    texts = [*outputs, *_worker_logs(folder, study), *runs]
    return [line for text in texts for line in text.splitlines() if LOCKED.search(line)]


def _idle_children(folder: Path, study: str) -> list[str]:
    """Lines of the workers' logs saying a child started ahead got no run: with as many
    workers as runs, none is due (the workers race for their first claims)."""
    return [line for text in _worker_logs(folder, study) for line in text.splitlines() if "got no run" in line]


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


@pytest.mark.timeout(600)
def test_three_workers_on_sqlite_train_each_point_once(tmp_path: Path) -> None:
    sweep = write_sweep(tmp_path, "three", epochs=1, space=THREE_POINTS, train_size=256)
    url = f"sqlite:///{tmp_path / 'sweeps.db'}"
    done = run(["run", str(sweep), "--storage", url, "--workers", "3"], tmp_path)
    assert done.returncode == 0, done.stderr
    _check_exactly_once(url, "three", 3, 1)
    assert _lock_errors(tmp_path, "three", done.stdout, done.stderr) == []
    assert _idle_children(tmp_path, "three") == []


def test_the_lock_check_reads_the_workers_logs(tmp_path: Path) -> None:
    (tmp_path / "checkpoints" / "s" / "key").mkdir(parents=True)
    (tmp_path / "checkpoints" / "s" / "worker-0.log").write_text("sqlite3.OperationalError: database is locked\n")
    (tmp_path / "checkpoints" / "s" / "key" / "train.log").write_text("fine\n")
    assert len(_lock_errors(tmp_path, "s", "")) == 1


@pytest.mark.postgres
@pytest.mark.timeout(600)
def test_three_workers_on_postgresql_train_each_point_once(tmp_path: Path, postgres_url: str) -> None:
    sweep = write_sweep(tmp_path, "three_pg", epochs=1, space=THREE_POINTS, train_size=256)
    done = run(["run", str(sweep), "--storage", postgres_url, "--workers", "3",
                "--checkpoints", str(tmp_path / "checkpoints")], tmp_path)
    assert done.returncode == 0, done.stderr
    _check_exactly_once(postgres_url, "three_pg", 3, 1)
    assert _idle_children(tmp_path, "three_pg") == []


@pytest.mark.timeout(600)
def test_a_killed_worker_is_taken_over_from_its_checkpoint(tmp_path: Path) -> None:
    sweep = write_sweep(tmp_path, "takeover", epochs=4, space="weight_decay = [0.05, 0.2]")
    url = f"sqlite:///{tmp_path / 'sweeps.db'}"
    process = start(["run", str(sweep), "--storage", url, "--workers", "2"], tmp_path)
    event = wait_for(process, lambda e: e["event"] == "epoch" and e["epoch"] == 2)
    with ResultStore(url) as store:
        victim = next(r for r in store.runs("takeover") if r["label"] == event["label"])
    worker_pid = int(victim["worker"].split("/")[1])
    os.kill(worker_pid, signal.SIGKILL)  # its child dies with it
    try:
        assert process.wait(timeout=400) == 0, process.stderr.read()
    finally:
        kill(process)
    with ResultStore(url) as store:
        run_ = next(r for r in store.runs("takeover") if r["label"] == event["label"])
        rows = store.epochs(run_["id"])
    assert run_["state"] == "complete" and run_["attempts"] == 2
    assert run_["worker"].split("/")[1] != str(worker_pid)
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4]
    # From the checkpoint: epoch 1 was not trained again; epoch 2's row may have been
    # written just before its checkpoint when the kill came (the epoch in flight).
    assert all(r["trainings"] == 1 for r in rows if r["epoch"] <= 1)
    assert sum(r["trainings"] > 1 for r in rows) <= 1


@pytest.mark.timeout(600)
def test_a_search_with_two_workers_completes_n_trials_in_total(tmp_path: Path) -> None:
    sweep = tmp_path / "search.toml"
    sweep.write_text(
        write_sweep(tmp_path, "base", epochs=1, space="", train_size=256).read_text()
        .replace('name = "base"', 'name = "search"')
        + '[search]\nsampler = "tpe"\nn_trials = 3\nseed = 1\n'
        + "space.weight_decay = {low = 0.01, high = 0.3, log = true}\n"
        + "space.learning_rate = {low = 5e-4, high = 3e-3, log = true}\n",
        encoding="utf-8",
    )
    url = f"sqlite:///{tmp_path / 'sweeps.db'}"
    done = run(["run", str(sweep), "--storage", url, "--workers", "2"], tmp_path)
    assert done.returncode == 0, done.stderr
    trials = optuna.load_study(study_name="search", storage=url).trials
    assert len(trials) == 3
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    assert len({(t.params["weight_decay"], t.params["learning_rate"]) for t in trials}) == 3
    with ResultStore(url) as store:
        assert all(r["state"] == "complete" and r["config"] for r in store.runs("search"))
