"""The runner's promises, checked as a user would meet them: a crashed child, an extended
grid, a changed [train], bad flags, the pruner. (Ctrl-C, SIGTERM and kill -9:
test_signals.py; Optuna's own command line: test_studies.py.)"""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from results.store.result_store import ResultStore
from testkit.sweeping import crashing_children, run, write_sweep


def _runs(url: str, study: str) -> dict[str, dict]:
    with ResultStore(url) as store:
        return {r["label"]: {**r, "epochs": store.epochs(r["id"])} for r in store.runs(study)}


@pytest.mark.long
@pytest.mark.timeout(400)
def test_a_crashed_child_fails_only_its_trial(tmp_path: Path) -> None:
    sweep = write_sweep(tmp_path, "crash", epochs=1, extra="[study]\nmax_retries = 0", train_size=256)
    url = f"sqlite:///{tmp_path / 'sweeps.db'}"
    # A child that segfaults when it is handed weight decay 0.05.
    crash = crashing_children(tmp_path, 'run["config"]["weight_decay"] == 0.05')
    done = run(["run", str(sweep), "--storage", url], tmp_path, extra_env=crash)
    assert done.returncode == 1, done.stderr
    runs = _runs(url, "crash")
    crashed, fine = runs["λ=0.05"], runs["λ=0.20"]
    assert crashed["state"] == "failed"
    assert "SIGSEGV" in crashed["failure_reason"]
    assert fine["state"] == "complete" and len(fine["epochs"]) == 1
    assert "run λ=0.05: failed" in done.stderr


@pytest.mark.timeout(240)
def test_an_extended_grid_enqueues_only_the_new_points(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'sweeps.db'}"
    sweep = write_sweep(tmp_path, "grow", space="weight_decay = [0.1]")
    assert run(["run", str(sweep), "--storage", url, "--max-trials", "0"], tmp_path).returncode == 0
    first = _runs(url, "grow")
    write_sweep(tmp_path, "grow", space="weight_decay = [0.1, 0.2, 0.3]")
    assert run(["run", str(sweep), "--storage", url, "--max-trials", "0"], tmp_path).returncode == 0
    runs = _runs(url, "grow")
    assert sorted(runs) == ["λ=0.10", "λ=0.20", "λ=0.30"]
    assert runs["λ=0.10"]["id"] == first["λ=0.10"]["id"]
    assert runs["λ=0.10"]["trial_number"] == first["λ=0.10"]["trial_number"]


@pytest.mark.timeout(240)
def test_a_changed_train_section_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'sweeps.db'}"
    sweep = write_sweep(tmp_path, "fixed")
    assert run(["run", str(sweep), "--storage", url, "--max-trials", "0"], tmp_path).returncode == 0
    sweep.write_text(sweep.read_text().replace("depth = 11", "depth = 20"))
    refused = run(["run", str(sweep), "--storage", url, "--max-trials", "0"], tmp_path)
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines() == [
        f"{sweep}: train: differs from study 'fixed' in depth: keep [train] as it was, "
        "or start a separate study with --new-study NAME"
    ]
    separate = run(["run", str(sweep), "--storage", url, "--max-trials", "0", "--new-study", "fixed20"], tmp_path)
    assert separate.returncode == 0, separate.stderr
    assert len(_runs(url, "fixed20")) == 2


@pytest.mark.timeout(240)
def test_bad_flags_and_storage_are_one_line_and_write_nothing(tmp_path: Path) -> None:
    sweep = write_sweep(tmp_path, "bad")
    before = sorted(p.name for p in tmp_path.iterdir())
    for args, needle in [
        (["run", str(sweep), "--storage", "mysql://x/y"], "--storage"),
        (["run", str(sweep), "--workers", "0"], "--workers"),
        (["run", str(sweep), "--data-dir", str(tmp_path / "nowhere")], "--data-dir"),
        (["resume", "nosuch", "--storage", f"sqlite:///{tmp_path / 'none.db'}"], "no database file"),
    ]:
        done = run(args, tmp_path)
        assert done.returncode == 2, (args, done.stderr)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and needle in lines[0], (args, lines)
    assert sorted(p.name for p in tmp_path.iterdir()) == before


@pytest.mark.long
@pytest.mark.timeout(600)
def test_a_schedule_aware_pruner_prunes_only_once_the_lr_has_fallen(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'sweeps.db'}"
    sweep = write_sweep(
        tmp_path, "pruned", epochs=3, space="learning_rate = [1e-3, 1e-7]", train_size=256,
        extra='[study]\npruner = "median"\nprune_after_lr_below = 1.0\nprune_after_trials = 1',
    )
    done = run(["run", str(sweep), "--storage", url], tmp_path)
    assert done.returncode == 0, done.stderr
    runs = _runs(url, "pruned")
    hopeless = runs["α=1.e-7"]
    assert hopeless["state"] == "pruned"
    # Judged only once the LR fell below α (after epoch 1 of the schedule [1, 1][0.1, 3]),
    # against the one run finished before it (prune_after_trials = 1).
    assert [e["epoch"] for e in hopeless["epochs"]] == [1, 2]
    assert runs["α=1.e-3"]["state"] == "complete"
    states = {t.user_attrs["label"]: t.state.name for t in optuna.load_study(study_name="pruned", storage=url).trials}
    assert states == {"α=1.e-3": "COMPLETE", "α=1.e-7": "PRUNED"}
