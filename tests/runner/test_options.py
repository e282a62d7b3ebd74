"""The runner's small decisions: GPU pinning, the schedule-aware pruner, labels of
search trials, the objective values."""

from __future__ import annotations

import argparse
from pathlib import Path

import optuna
import pytest

from sweep_runner import commands
from sweep_runner.pruning import make_pruner, pruner_settings, should_judge
from sweep_runner.worker import objective_values
from sweeps.errors import InputError
from sweeps.sections import Study
from sweeps.sweep_file import parse_sweep


def _args(**given) -> argparse.Namespace:
    defaults = dict(data_dir=None, gpus=None, workers=None, trials_per_gpu=1, log_format="plain",
                    checkpoints=None, max_trials=None, report=None, start_ahead=True)
    return argparse.Namespace(**{**defaults, **given})


def test_gpus_pin_k_workers_per_gpu(tmp_path: Path) -> None:
    launch = commands.launch_options(_args(gpus="0,1", trials_per_gpu=2), f"sqlite:///{tmp_path}/s.db")
    assert launch.workers == 4
    assert launch.gpus == ["0", "0", "1", "1"]
    assert launch.checkpoints == tmp_path / "checkpoints"  # beside the database


def test_each_worker_gets_its_gpu_and_grows_memory(tmp_path: Path) -> None:
    launch = commands.Launch(checkpoints=tmp_path, workers=2, gpus=["0", "1"], max_trials=3)
    started = [commands.worker_command("s", "sqlite:///x.db", launch, index) for index in range(2)]
    assert [env["CUDA_VISIBLE_DEVICES"] for _, env in started] == ["0", "1"]
    assert all(env["TF_FORCE_GPU_ALLOW_GROWTH"] == "true" for _, env in started)
    assert all(env["XLA_PYTHON_CLIENT_PREALLOCATE"] == "false" for _, env in started)
    # --max-trials is shared out: 2 + 1.
    assert [command[command.index("--max-trials") + 1] for command, _ in started] == ["2", "1"]


@pytest.mark.parametrize("gpus, workers", [("0,x", None), ("0,1", 3)])
def test_bad_gpu_flags(gpus: str, workers: int | None) -> None:
    with pytest.raises(InputError, match="--gpus|--workers"):
        commands.launch_options(_args(gpus=gpus, workers=workers), "sqlite:///s.db")


def _pruner_study(**settings: object) -> Study:
    return Study(**{"pruner": "median", **settings})


def test_the_pruner_waits_for_the_learning_rate_to_fall() -> None:
    assert pruner_settings(Study()) is None
    settings = pruner_settings(_pruner_study())
    assert not should_judge(None, 1e-6, 1e-3)
    assert not should_judge(settings, 8e-4, 8e-4)  # the LR still high: no judgement
    assert not should_judge(settings, 8e-5, 8e-4)  # exactly a tenth: not yet below
    assert should_judge(settings, 7.9e-5, 8e-4)
    assert isinstance(make_pruner(None), optuna.pruners.NopPruner)
    assert isinstance(make_pruner(settings), optuna.pruners.MedianPruner)
    assert isinstance(make_pruner(pruner_settings(_pruner_study(pruner="hyperband"))), optuna.pruners.HyperbandPruner)
    assert isinstance(make_pruner(pruner_settings(_pruner_study(pruner="patient"))), optuna.pruners.PatientPruner)


@pytest.mark.parametrize("pruner", ["median", "patient"])
def test_the_pruner_waits_for_prune_after_trials_finished_runs(pruner: str) -> None:
    """A run far below the only finished one, and worse for the last four epochs than
    before (the patient pruner's patience is 3): pruned only where one finished run
    is enough."""
    verdicts = {}
    for finished_needed in (1, 2):
        settings = pruner_settings(_pruner_study(pruner=pruner, prune_after_trials=finished_needed))
        study = optuna.create_study(direction="maximize", pruner=make_pruner(settings))
        study.add_trial(optuna.trial.create_trial(
            value=0.9, intermediate_values={epoch: 0.9 for epoch in range(1, 7)}, params={}, distributions={},
        ))
        trial = study.ask()
        for epoch in range(1, 7):
            trial.report(0.5 if epoch == 1 else 0.1, epoch)
        verdicts[finished_needed] = trial.should_prune()
    assert verdicts == {1: True, 2: False}


def test_objective_values_rank_a_run_that_never_reached_the_threshold_last() -> None:
    sweep = parse_sweep("[train]\nepochs = 3\n[report]\nthreshold = 0.9\n", "s.toml")
    reached = [{"epoch": 1, "val_acc": 0.8}, {"epoch": 2, "val_acc": 0.91}, {"epoch": 3, "val_acc": 0.9}]
    never = [{"epoch": 1, "val_acc": 0.5}, {"epoch": 2, "val_acc": 0.6}, {"epoch": 3, "val_acc": None}]
    assert objective_values(reached, sweep) == [0.91, 2.0]
    assert objective_values(never, sweep) == [0.6, 4.0]
