"""`sweep train FILE --run LABEL`: picking the run, and a Keras-style line per epoch."""

from __future__ import annotations

import re
import sys
import types
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


def _fake_sweep_file(monkeypatch: pytest.MonkeyPatch, trials: list[_Trial]) -> None:
    """Stands in for sweeps.sweep_file (load_sweep(path).trials()), another module's job."""
    module = types.ModuleType("sweeps.sweep_file")

    def load_sweep(path):
        return types.SimpleNamespace(trials=lambda: trials)

    module.load_sweep = load_sweep  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "sweeps.sweep_file", module)


def _trials(tiny_config) -> list[_Trial]:
    return [
        _Trial("0", None, tiny_config(seed=0), 1),
        _Trial("3A", "smaller LR", tiny_config(seed=1, epochs=2), 2),
    ]


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


def test_train_command_prints_a_line_per_epoch(
    tiny_config, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from trainer.cli import train_command

    _fake_sweep_file(monkeypatch, _trials(tiny_config))
    status = train_command("f.toml", "3A", data_dir=None, checkpoints=str(tmp_path))
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
    assert "completed: 2 epochs, best val_acc" in out
