"""A study made before the runner named its objectives and recorded the grid's spans
(every grid point a one-point distribution, m a parameter, Optuna's `fixed_params`
written by hand) still resumes and extends with this runner."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState

from testkit.sweeping import run
from testkit.tiny_sweeps import sweep_text

OLD_PARAMS = ("weight_decay", "learning_rate", "ema_momentum")


def make_old_study(path: Path, url: str) -> None:
    """The study and WAITING trials as `sweep run` made them before: no metric names,
    no constants, each trial's λ, α, m as one-point distributions."""
    from results.store.result_store import ResultStore
    from sweeps.sweep_file import load_sweep

    sweep = load_sweep(path)
    study = optuna.create_study(study_name=sweep.name, storage=url, direction="maximize")
    study.set_user_attr("train", sweep.train_signature())
    study.set_user_attr("report_threshold", sweep.report.threshold)
    study.set_user_attr("report_thresholds", sweep.report.thresholds)
    study.set_user_attr("sweep_file", sweep.text)
    study.set_user_attr("sweep_path", str(sweep.path))
    with ResultStore(url) as store:
        for trial in sweep.trials():
            config = trial.config.model_dump(mode="json")
            params = {key: float(config[key]) for key in OLD_PARAMS}
            run_id = store.register_run(sweep.name, trial.run_key, label=trial.label, comment=None, config=config)
            study.add_trial(optuna.trial.create_trial(
                state=TrialState.WAITING, params=params,
                distributions={key: FloatDistribution(value, value) for key, value in params.items()},
                user_attrs={"label": trial.label, "run_key": trial.run_key, "comment": "", "attempt": 0,
                            "schedule": trial.config.schedule_notation()},
                system_attrs={"fixed_params": params},
            ))
            store.set_trial_number(run_id, len(study.trials) - 1)


@pytest.mark.long
@pytest.mark.timeout(300)
def test_an_old_study_resumes_and_extends(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'sweeps.db'}"
    old = tmp_path / "old.toml"
    old.write_text(sweep_text("old", epochs=1, schedule=False, train_size=128, space="weight_decay = [0.05]"))
    make_old_study(old, url)
    extended = tmp_path / "extended.toml"
    extended.write_text(sweep_text("old", epochs=1, schedule=False, train_size=128, space="weight_decay = [0.05, 0.2]"))
    done = run(["run", str(extended), "--storage", url], tmp_path)
    assert done.returncode == 0, done.stderr
    study = optuna.load_study(study_name="old", storage=url)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 2
    old_trial, new_trial = study.trials
    # The old run kept its one-point λ; the new one has the grid's span beside it.
    assert old_trial.distributions["weight_decay"] == FloatDistribution(0.05, 0.05)
    assert new_trial.distributions == {"weight_decay": FloatDistribution(0.05, 0.2)}
    assert study.metric_names == ["val_acc"]
    assert study.user_attrs["constants"]["ema_momentum"] == 0.9
    # One epoch of 128 digits is far from the default threshold, 0.92: no threshold epoch.
    assert all("threshold_epoch" not in t.user_attrs for t in study.trials)
