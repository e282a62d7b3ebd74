"""Checkpoint folders: bound to their study instance, and a damaged latest file costs
one epoch, never the run."""

from __future__ import annotations

import errno
import json
import logging
from pathlib import Path

import numpy as np
import pytest

from sweeps.errors import InputError
from trainer import checkpoint
from trainer.records import TrainResult


class _Variable:
    """Just what `checkpoint.save` and `restore` use of a Keras variable."""

    def __init__(self, value: np.ndarray, path: str) -> None:
        self.value, self.path, self.shape = value, path, value.shape

    def numpy(self) -> np.ndarray:
        return self.value

    def assign(self, value: np.ndarray) -> None:
        self.value = np.array(value)


class _Holder:
    def __init__(self, *values: float) -> None:
        self.variables = [_Variable(np.full((3,), v, dtype=np.float32), f"v{i}") for i, v in enumerate(values)]


def _save_epochs(folder: Path, epochs: int, instance: str = "inst-a") -> None:
    for epoch in range(1, epochs + 1):
        state = checkpoint.RunState("run-key", epochs_done=epoch, instance=instance)
        checkpoint.save(folder, _Holder(float(epoch)), _Holder(10.0 * epoch), state)


@pytest.mark.timeout(60)
def test_a_truncated_latest_checkpoint_falls_back_to_the_epoch_before(tmp_path: Path, caplog) -> None:
    _save_epochs(tmp_path, 3)
    latest = tmp_path / checkpoint.CHECKPOINT
    latest.write_bytes(latest.read_bytes()[: latest.stat().st_size // 2])  # a write cut short

    with caplog.at_level(logging.WARNING, logger="trainer.checkpoint"):
        loaded = checkpoint.load(tmp_path, "run-key", "inst-a")

    assert loaded is not None and loaded.state.epochs_done == 2  # one epoch lost, not the run
    model = _Holder(0.0)
    checkpoint.restore(loaded, model, _Holder(0.0))
    assert model.variables[0].value.tolist() == [2.0, 2.0, 2.0]
    # The user is told which file was bad, and it is kept for a look, out of the way.
    assert str(latest) in caplog.text and "damaged" in caplog.text
    assert (tmp_path / "checkpoint.npz.bad").is_file() and not latest.exists()


@pytest.mark.timeout(60)
def test_an_empty_latest_checkpoint_and_no_previous_means_a_fresh_start(tmp_path: Path) -> None:
    (tmp_path / checkpoint.CHECKPOINT).write_bytes(b"")
    assert checkpoint.load(tmp_path, "run-key", "inst-a") is None
    assert (tmp_path / "checkpoint.npz.bad").is_file()


@pytest.mark.timeout(60)
def test_a_full_disk_during_a_write_keeps_the_last_whole_checkpoint(tmp_path: Path, monkeypatch) -> None:
    _save_epochs(tmp_path, 2)
    real_savez = np.savez

    def full_disk(stream, **arrays):
        stream.write(b"PK\x03\x04 half a zip")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np, "savez", full_disk)
    with pytest.raises(OSError) as raised:
        _save_epochs(tmp_path, 3)
    assert raised.value.errno == errno.ENOSPC
    monkeypatch.setattr(np, "savez", real_savez)

    assert checkpoint.load(tmp_path, "run-key", "inst-a").state.epochs_done == 2
    assert not list(tmp_path.glob(".*.tmp"))  # no half-written file left behind


@pytest.mark.timeout(60)
def test_a_folder_of_another_study_instance_is_never_taken(tmp_path: Path) -> None:
    _save_epochs(tmp_path, 1, instance="old-database")
    with pytest.raises(InputError, match="another study instance"):
        checkpoint.load(tmp_path, "run-key", "new-database")
    state = checkpoint.RunState("run-key", epochs_done=1, instance="old-database")
    checkpoint.write_result(tmp_path, TrainResult("completed", 1, best_val_acc=0.9, best_epoch=1), state)
    assert json.loads((tmp_path / checkpoint.RESULT).read_text())["instance"] == "old-database"
    with pytest.raises(InputError, match="another study instance"):
        checkpoint.read_result(tmp_path, "run-key", "new-database")
    assert checkpoint.owner(tmp_path) == ("run-key", "old-database")


@pytest.mark.timeout(60)
def test_a_damaged_outcome_is_set_aside_and_the_run_continues(tmp_path: Path, caplog) -> None:
    _save_epochs(tmp_path, 2)
    (tmp_path / checkpoint.RESULT).write_text('{"run_key": "run-key", "res')  # cut short
    with caplog.at_level(logging.WARNING, logger="trainer.checkpoint"):
        assert checkpoint.read_result(tmp_path, "run-key", "inst-a") is None
    assert "result.json is damaged" in caplog.text
    assert (tmp_path / "result.json.bad").is_file()
    assert checkpoint.load(tmp_path, "run-key", "inst-a").state.epochs_done == 2  # continues there
