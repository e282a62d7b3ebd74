"""A two-objective grid end to end, trained once for the session and read by Optuna's
command line, `sweep db` and the tables. (A `[search]` across workers, with a retried
trial: test_workers.py.)"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import optuna
import pytest

from results.store.schema import SCHEMA_REVISION
from results.store.result_store import ResultStore
from testkit.sweeping import run
from trained import EPOCHS, THRESHOLD, Trained


def _objectives(rows: list[dict]) -> list[float]:
    """[best val_acc, first epoch at the threshold, else one past the last]."""
    accs = [(r["epoch"], r["val_acc"]) for r in rows]
    reached = [epoch for epoch, acc in accs if acc >= THRESHOLD]
    return [max(acc for _, acc in accs), float(reached[0] if reached else len(rows) + 1)]


@pytest.mark.long
@pytest.mark.timeout(400)
def test_a_two_objective_study_tells_both_values(trained: Trained) -> None:
    study = optuna.load_study(study_name=trained.name, storage=trained.url)
    assert study.directions == [optuna.study.StudyDirection.MAXIMIZE, optuna.study.StudyDirection.MINIMIZE]
    trials = study.get_trials(deepcopy=False)
    assert len(trials) == 2 and all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    with ResultStore(trained.url) as store:
        runs = {r["label"]: r for r in store.runs(trained.name)}
        for trial in trials:
            rows = store.epochs(runs[trial.user_attrs["label"]]["id"])
            assert [r["epoch"] for r in rows] == list(range(1, EPOCHS + 1))
            assert trial.values == pytest.approx(_objectives(rows))
            assert trial.intermediate_values == {}  # Optuna cannot prune two objectives
            # The attribute is empty for a run that never reached the threshold, where the
            # objective (a number for Optuna) is one past the last epoch.
            reached = trial.values[1] <= EPOCHS
            assert trial.user_attrs.get("threshold_epoch") == (trial.values[1] if reached else None)
    assert study.metric_names == ["val_acc", "threshold_epoch"]
    assert {t.number for t in study.best_trials} <= {t.number for t in trials}
    assert len(study.best_trials) >= 1
    # The summary closes the sweep, fitted to COLUMNS=100: every number whole on its line.
    lines = trained.stdout.splitlines()
    table = lines[next(i for i, line in enumerate(lines) if line.startswith("label ")):]
    assert "val_acc_best" in table[0] and max(map(len, table)) <= 100
    for trial in trials:
        assert any(f"{trial.values[0]:.5f}" in line.split() for line in table)


@pytest.mark.long
@pytest.mark.timeout(400)
def test_the_second_run_gets_the_child_started_ahead(trained: Trained) -> None:
    """One worker, two runs: the second run's child imported while the first trained
    (started once the first run's child had imported), and no child was left idle."""
    (log,) = (trained.folder / "checkpoints" / trained.name).glob("worker-*.log")
    text = log.read_text(encoding="utf-8")
    assert text.count("started ahead for the next run") == 1, text
    assert text.count("started ahead\n") == 1, text  # "run handed to child N, started ahead"
    assert "got no run" not in text


@pytest.mark.long
@pytest.mark.timeout(400)
def test_the_optuna_command_line_lists_the_trials(trained: Trained) -> None:
    optuna_cli = Path(sys.executable).parent / "optuna"
    listed = subprocess.run(
        [str(optuna_cli), "trials", "--study-name", trained.name, "--storage", trained.url, "-f", "json"],
        capture_output=True, text=True, cwd=trained.folder, timeout=120,
    )
    assert listed.returncode == 0, listed.stderr
    trials = json.loads(listed.stdout)
    assert sorted((t["state"], t["user_attrs"]["label"]) for t in trials) == [
        ("COMPLETE", "λ=0.05"), ("COMPLETE", "λ=0.20")
    ]
    assert all(len(t["values"]) == 2 for t in trials)
    studies = subprocess.run(
        [str(optuna_cli), "studies", "--storage", trained.url], capture_output=True, text=True,
        cwd=trained.folder, timeout=120,
    )
    assert studies.returncode == 0 and trained.name in studies.stdout


@pytest.mark.long
@pytest.mark.timeout(400)
def test_sweep_db_shows_and_migrates_the_schema(trained: Trained, tmp_path: Path) -> None:
    current = run(["db", "current", "--storage", trained.url], tmp_path)
    assert current.returncode == 0, current.stderr
    assert current.stdout.strip().endswith(
        f"results schema {SCHEMA_REVISION}; this keras-sweep: {SCHEMA_REVISION}"
    )
    # A database made by an older version: the tables without their revision stamp.
    url = trained.copy_to(tmp_path)
    assert run(["db", "stamp", "base", "--storage", url], tmp_path).returncode == 0
    stamped = run(["db", "current", "--storage", url], tmp_path)
    assert "results schema (none)" in stamped.stdout, stamped.stdout
    missing = run(["db", "current", "--storage", f"sqlite:///{tmp_path / 'none.db'}"], tmp_path)
    assert missing.returncode == 2 and len(missing.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "none.db").exists()
