"""A grid point's Optuna trial carries its λ, α and m from the moment it is enqueued, so
that optuna-dashboard's parameter plots show a run trained in its first attempt."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from testkit.sweeping import write_sweep


@pytest.mark.timeout(60)
def test_waiting_trials_carry_the_grid_points_params(tmp_path: Path) -> None:
    from sweep_runner.storage import quiet_optuna
    from sweep_runner.study import prepare_study
    from sweeps.sweep_file import load_sweep

    quiet_optuna()
    url = f"sqlite:///{tmp_path / 'sweeps.db'}"
    path = write_sweep(tmp_path, "grid", space="weight_decay = [0.05, 0.2]\nlearning_rate = [1e-3, 4e-3]")
    prepare_study(load_sweep(path), url).store.close()
    trials = optuna.load_study(study_name="grid", storage=url).get_trials()
    assert [t.state.name for t in trials] == ["WAITING"] * 4
    points = sorted((t.params["weight_decay"], t.params["learning_rate"]) for t in trials)
    assert points == [(0.05, 1e-3), (0.05, 4e-3), (0.2, 1e-3), (0.2, 4e-3)]
    assert all(t.params["ema_momentum"] == 0.9 for t in trials)  # the sweep's fixed m
