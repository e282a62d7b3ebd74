"""Checkpoint folders: bound to their study instance, and a damaged latest file costs
one epoch, never the run."""

from __future__ import annotations

import errno
import json
import logging
import os
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


# -- any damaged checkpoint is set aside with its reason; the run continues from the
# newest intact one (issue 18) --


def _previous_is_taken(folder: Path, caplog, *, depth_like: int = 3) -> checkpoint.Checkpoint:
    with caplog.at_level(logging.WARNING, logger="trainer.checkpoint"):
        loaded = checkpoint.load(folder, "run-key", "inst-a", model=_Holder(0.0), optimizer=_Holder(0.0))
    assert loaded is not None and loaded.state.epochs_done == 2
    assert loaded.model_values[0].tolist() == [2.0] * depth_like
    return loaded


@pytest.mark.timeout(60)
def test_a_checkpoint_that_is_a_directory_is_set_aside_and_saving_works_again(tmp_path: Path, caplog) -> None:
    _save_epochs(tmp_path, 2)
    (tmp_path / checkpoint.CHECKPOINT).unlink()
    os.replace(tmp_path / checkpoint.PREVIOUS, tmp_path / checkpoint.CHECKPOINT)
    (tmp_path / checkpoint.PREVIOUS).mkdir()  # a directory where the epoch before should be
    (tmp_path / checkpoint.PREVIOUS / "junk").write_text("x")

    with caplog.at_level(logging.WARNING, logger="trainer.checkpoint"):
        loaded = checkpoint.load(tmp_path, "run-key", "inst-a")
    assert loaded is not None and loaded.state.epochs_done == 1
    assert "not a file" in caplog.text and str(tmp_path / checkpoint.PREVIOUS) in caplog.text
    assert (tmp_path / "checkpoint.prev.npz.bad" / "junk").is_file()  # kept for a look
    # Until now every save failed here: the latest could not step back over a folder.
    checkpoint.save(tmp_path, _Holder(2.0), _Holder(20.0), checkpoint.RunState("run-key", 2, instance="inst-a"))
    assert checkpoint.load(tmp_path, "run-key", "inst-a").state.epochs_done == 2


@pytest.mark.timeout(60)
def test_a_latest_checkpoint_that_is_a_directory_falls_back_to_the_epoch_before(tmp_path: Path, caplog) -> None:
    _save_epochs(tmp_path, 3)
    (tmp_path / checkpoint.CHECKPOINT).unlink()
    (tmp_path / checkpoint.CHECKPOINT).mkdir()
    _previous_is_taken(tmp_path, caplog)
    assert "checkpoint.npz is damaged (not a file" in caplog.text


@pytest.mark.timeout(60)
def test_arrays_of_other_shapes_are_set_aside_before_any_is_assigned(tmp_path: Path, caplog) -> None:
    _save_epochs(tmp_path, 2)
    # The newest checkpoint says it is this run's, but its arrays are another model's
    # (another depth): two variables instead of one, of another shape.
    state = checkpoint.RunState("run-key", epochs_done=3, instance="inst-a")
    deeper = _Holder(3.0, 3.0)
    deeper.variables[1] = type(deeper.variables[1])(np.zeros((5, 5), np.float32), "v1")
    checkpoint.save(tmp_path, _Holder(3.0), deeper, state)

    model, optimizer = _Holder(0.0), _Holder(0.0)
    with caplog.at_level(logging.WARNING, logger="trainer.checkpoint"):
        loaded = checkpoint.load(tmp_path, "run-key", "inst-a", model=model, optimizer=optimizer)
    assert loaded.state.epochs_done == 2
    assert "2 optimizer variables, the run has 1" in caplog.text
    assert (tmp_path / "checkpoint.npz.bad").is_file()

    # Shapes alone (the same count): named with the variable and both shapes.
    wide = _Holder(4.0)
    wide.variables[0] = type(wide.variables[0])(np.zeros((7,), np.float32), "v0")
    checkpoint.save(tmp_path, wide, _Holder(40.0), checkpoint.RunState("run-key", 4, instance="inst-a"))
    with caplog.at_level(logging.WARNING, logger="trainer.checkpoint"):
        loaded = checkpoint.load(tmp_path, "run-key", "inst-a", model=model, optimizer=optimizer)
    assert "model variable v0 has shape (7,), the run's is (3,)" in caplog.text
    assert loaded.state.epochs_done == 2 and (tmp_path / "checkpoint.npz.bad.2").is_file()
    checkpoint.restore(loaded, model, optimizer)
    assert model.variables[0].value.tolist() == [2.0] * 3


@pytest.mark.timeout(60)
def test_no_checkpoint_that_fits_means_a_fresh_start(tmp_path: Path) -> None:
    _save_epochs(tmp_path, 2)
    model = _Holder(0.0, 0.0)  # every saved checkpoint has one model variable
    assert checkpoint.load(tmp_path, "run-key", "inst-a", model=model, optimizer=_Holder(0.0)) is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.npz.bad", "checkpoint.prev.npz.bad"]
    assert checkpoint.trained_before(tmp_path)  # the trainer says it starts again
    assert [v.value.tolist() for v in model.variables] == [[0.0] * 3] * 2  # nothing half-assigned


@pytest.mark.timeout(60)
def test_another_runs_file_beside_the_runs_own_is_set_aside(tmp_path: Path, caplog) -> None:
    _save_epochs(tmp_path, 2)
    other = tmp_path / "other"
    other.mkdir()
    checkpoint.save(other, _Holder(9.0), _Holder(90.0), checkpoint.RunState("other-run", 5, instance="inst-b"))
    os.replace(other / checkpoint.CHECKPOINT, tmp_path / checkpoint.CHECKPOINT)  # copied over the latest

    with caplog.at_level(logging.WARNING, logger="trainer.checkpoint"):
        loaded = checkpoint.load(tmp_path, "run-key", "inst-a")
    assert loaded.state.epochs_done == 1  # the run's own newest
    assert "holds run other-run" in caplog.text and (tmp_path / "checkpoint.npz.bad").is_file()
    # The worker keeps such a folder (it has the run's own files); a folder of only
    # another run's files is another run's, and is refused as before.
    assert ("run-key", "inst-a") in checkpoint.owners(tmp_path)
    only_other = tmp_path / "only-other"
    only_other.mkdir()
    checkpoint.save(only_other, _Holder(9.0), _Holder(90.0), checkpoint.RunState("other-run", 5, instance="inst-b"))
    with pytest.raises(InputError, match="holds run other-run"):
        checkpoint.load(only_other, "run-key", "inst-a")
    assert (only_other / checkpoint.CHECKPOINT).is_file()  # refused, not renamed


@pytest.mark.long
@pytest.mark.timeout(300)
def test_training_continues_from_the_newest_checkpoint_that_fits_with_its_optimizer_state(
    tmp_path: Path, caplog
) -> None:
    """The real trainer: the latest checkpoint holds another depth's arrays under this
    run's header; the run continues after the epoch before it, optimizer state and all."""
    from sweeps.config import RunConfig
    from trainer import train

    config = RunConfig(
        dataset="synthetic", depth=11, epochs=3, batch_size=16, image_shape=(16, 16, 3), train_size=64,
        validation_size=32, learning_rate=1e-3, schedule="[1.e-3, 0][1.e-4, 3]", precision="float32",
    )
    done = iter([False, True])  # stop after epoch 2: the latest is epoch 2, the one before epoch 1
    first = []
    train(config, first.append, tmp_path, should_stop=lambda: next(done), instance="inst-a")
    assert [r.epoch for r in first] == [1, 2]
    latest = tmp_path / checkpoint.CHECKPOINT
    with np.load(latest) as saved:
        arrays = dict(saved)
    arrays["model_0"] = np.zeros((3, 3, 3, 32), np.float32)  # another model's first kernel
    with open(latest, "wb") as stream:
        np.savez(stream, **arrays)

    rest = []
    with caplog.at_level(logging.WARNING, logger="trainer.checkpoint"):
        result = train(config, rest.append, tmp_path, instance="inst-a")
    assert result.status == "completed" and result.epochs_completed == 3
    assert [r.epoch for r in rest] == [2, 3]  # epoch 2 again: its row is replaced, trainings 2
    # The optimizer's step count came back with the weights: epoch 2's learning rate.
    assert rest[0].lr == pytest.approx(first[1].lr, rel=1e-6)
    assert "has shape (3, 3, 3, 32)" in caplog.text and (tmp_path / "checkpoint.npz.bad").is_file()
