"""A grid point's Optuna trial carries its swept λ and α from the moment it is enqueued,
so that optuna-dashboard's parameter plots show a run trained in its first attempt;
each with the grid's span as its distribution, and m (not swept) as a study attribute."""

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
    # The grid's span, not one point per trial: importance and contour plots need it.
    assert {(d.low, d.high, d.log) for t in trials for d in [t.distributions["weight_decay"]]} == {(0.05, 0.2, False)}
    assert {(d.low, d.high) for t in trials for d in [t.distributions["learning_rate"]]} == {(1e-3, 4e-3)}
    # m, the same for every run, is the study's, not a parameter; no Optuna internals written.
    assert all("ema_momentum" not in t.params and "fixed_params" not in t.system_attrs for t in trials)
    study = optuna.load_study(study_name="grid", storage=url)
    assert study.user_attrs["constants"]["ema_momentum"] == 0.9
    assert study.metric_names == ["val_acc"]
