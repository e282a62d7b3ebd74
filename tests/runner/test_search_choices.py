"""A `[search]` over schedule choices in the post's notation: each choice is suggested
by its position, never decoded from its text (which is not JSON: `[8.e-4, 1]`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sweep_runner.study import prepare_study
from sweep_runner.worker import Worker, WorkerOptions, choice_labels
from sweeps.config import RunConfig
from sweeps.sweep_file import load_sweep

SCHEDULES = ["[8.e-4, 1][8.e-5, 2]", "[1.e-3, 2]"]


def test_labels_stand_for_each_choice_once() -> None:
    assert choice_labels(SCHEDULES) == SCHEDULES
    assert choice_labels([64, 128]) == [64, 128]
    # Equal under ==, or a string that reads like the list beside it: numbered.
    assert choice_labels([1, True, 1.0]) == ["1: 1", "2: True", "3: 1.0"]
    assert choice_labels(["[1, 2]", [1, 2]]) == ["1: [1, 2]", "2: [1, 2]"]


@pytest.mark.timeout(120)
def test_each_trial_trains_the_schedule_it_was_given(tmp_path: Path) -> None:
    sweep_file = tmp_path / "choices.toml"
    sweep_file.write_text(
        'name = "choices"\n[train]\ndataset = "digits"\ndepth = 11\nepochs = 2\n'
        '[search]\nsampler = "random"\nn_trials = 4\nseed = 3\n'
        f"space.schedule = {{choices = {SCHEDULES!r}}}\n".replace("'", '"'),
        encoding="utf-8",
    )
    opened = prepare_study(load_sweep(sweep_file), f"sqlite:///{tmp_path / 'sweeps.db'}")
    worker = Worker(opened, WorkerOptions(checkpoints=tmp_path / "checkpoints"))
    picked = []
    for run in opened.store.runs(opened.name):
        _, run = worker._open_trial(run)
        schedule = opened.study.get_trials(deepcopy=False)[run["trial_number"]].params["schedule"]
        config = RunConfig.model_validate(run["config"])
        assert config.schedule_notation() == RunConfig.model_validate(
            {**run["config"], "schedule": schedule}
        ).schedule_notation()
        picked.append(schedule)
    assert sorted(set(picked)) == sorted(SCHEDULES)
    opened.store.close()
