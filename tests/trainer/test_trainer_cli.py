"""`sweep train FILE --run LABEL`: picking the run, and a Keras-style line per epoch."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from sweeps.config import RunConfig
from sweeps.errors import InputError

pytestmark = pytest.mark.backend


@dataclass
class _Trial:
    label: str
    comment: str | None
    config: RunConfig
    number: int

    @property
    def run_key(self) -> str:
        return self.config.run_key


def _trials(tiny_config) -> list[_Trial]:
    return [
        _Trial("0", None, tiny_config(seed=0), 1),
        _Trial("3A", "smaller LR", tiny_config(seed=1, epochs=2), 2),
    ]


# The real sweep-file path: two explicit runs of a tiny synthetic training.
SWEEP_FILE = """\
[train]
dataset = "synthetic"
depth = 11
epochs = 2
train_size = 64
validation_size = 32
batch_size = 16
flip = false
[[runs]]
label = "0"
[[runs]]
label = "3A"
comment = "smaller LR"
learning_rate = 5e-4
"""


def test_select_by_label_number_and_run_key(tiny_config) -> None:
    from trainer.cli import select_trial

    trials = _trials(tiny_config)
    assert select_trial(trials, "3A", "f.toml") is trials[1]
    assert select_trial(trials, "#1", "f.toml") is trials[0]
    assert select_trial(trials, trials[1].run_key[:6], "f.toml") is trials[1]
    with pytest.raises(InputError, match=r"--run 7: no such run in f.toml; its labels: 0, 3A"):
        select_trial(trials, "7", "f.toml")
    with pytest.raises(InputError, match="no such run"):
        select_trial(trials, "#3", "f.toml")


def test_a_number_that_is_no_label_is_never_taken_for_a_run_key() -> None:
    """In a grid (labels `λ=…`) `--run 1` once trained whichever run's key began with 1."""
    from sweeps.sweep_file import parse_sweep
    from trainer.cli import select_trial

    grid = parse_sweep('[train]\ndataset = "digits"\ndepth = 11\n[space]\nseed = [0, 1, 2, 3, 4, 5, 6, 7]\n', "g.toml")
    trials = grid.trials()
    assert any(trial.run_key.startswith("1") for trial in trials)  # the trap is there
    with pytest.raises(InputError, match=r"did you mean #1, the run labelled 'seed=0'\?; its labels: seed=0, seed=1"):
        select_trial(trials, "1", "g.toml")
    assert select_trial(trials, "#2", "g.toml") is trials[1]
    assert select_trial(trials, "seed=2", "g.toml") is trials[2]
    assert select_trial(trials, trials[3].run_key[:4], "g.toml") is trials[3]


@pytest.mark.long
@pytest.mark.slow
@pytest.mark.timeout(240)
def test_train_command_prints_a_line_per_epoch(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from trainer.cli import train_command

    sweep = tmp_path / "f.toml"
    sweep.write_text(SWEEP_FILE, encoding="utf-8")
    status = train_command(str(sweep), "3A", data_dir=None, checkpoints=str(tmp_path / "run"))
    out = capsys.readouterr().out
    assert status == 0
    assert "run 3A (smaller LR), #2" in out
    lines = [line for line in out.splitlines() if line.startswith("Epoch ")]
    assert len(lines) == 2
    pattern = (
        r"Epoch 2/2 - \d+s - loss: \d\.\d{4} - acc: \d\.\d{4} - val_loss: \d\.\d{4} "
        r"- val_acc: \d\.\d{4} - lr: \d\.\d{4}e-0\d - \d+ img/s"
    )
    assert re.fullmatch(pattern, lines[1]), lines[1]
    assert " - lr: 5.0000e-04 - " in lines[1]  # run 3A's own α, read from the file
    assert "completed: 2 epochs, best val_acc" in out
