"""A run's state on disk, written so that a kill at any moment loses at most one epoch.

The folder of a run holds, while it trains:

- `checkpoint.npz`: after every epoch, one file with the model's variables (weights,
  BatchNorm statistics and the augmentation's `SeedGenerator` state), the optimizer's
  variables (iteration count, Adam moments, EMA averages, loss scale) and a JSON
  header (run key, epochs done, history, best epoch). It is replaced atomically:
  written to a temporary file, fsynced, then `os.replace`d over the old one.
- `best.weights.h5`: the weights of the epoch with the highest val_acc so far.

and when the run has ended (completed or diverged):

- `last.weights.h5`: the final weights (with EMA, the averages, as after `fit()`),
- `result.json`: the outcome and the full history; the checkpoint is deleted.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np

from sweeps.errors import InputError
from trainer.records import TrainResult

CHECKPOINT = "checkpoint.npz"
RESULT = "result.json"
BEST = "best.weights.h5"
LAST = "last.weights.h5"


@dataclass
class RunState:
    """What a run knows besides its variables.

    Args:
        run_key: the `RunConfig.run_key` the folder belongs to.
        epochs_done: completed epochs (the next epoch to train, 0-based).
        history: one `EpochRecord.as_dict()` per completed epoch.
        best_val_acc: the highest val_acc so far.
        best_epoch: its 1-based epoch.
    """

    run_key: str
    epochs_done: int = 0
    history: list[dict[str, float | int]] = field(default_factory=list)
    best_val_acc: float | None = None
    best_epoch: int | None = None


@dataclass
class Checkpoint:
    """A loaded checkpoint: the state and the variables' values in saved order."""

    state: RunState
    model_values: list[np.ndarray]
    optimizer_values: list[np.ndarray]


def _fsync_directory(directory: Path) -> None:
    # Makes the rename itself durable; not every platform can open a directory.
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def write_atomically(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    """Writes a file so that readers see the old or the new one, never a part.

    Args:
        path: the file to (re)place.
        write: writes the contents to the open temporary file.
    """
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(descriptor, "wb") as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)


def save_weights_atomically(model: Any, path: Path) -> None:
    """`model.save_weights` (Keras' `.weights.h5`) through a temporary file."""
    temporary = path.with_name(f".{path.name[: -len('.weights.h5')]}.tmp.weights.h5")
    model.save_weights(str(temporary))
    with open(temporary, "rb+") as stream:
        os.fsync(stream.fileno())
    os.replace(temporary, path)
    _fsync_directory(path.parent)


def save(directory: Path, model: Any, optimizer: Any, state: RunState) -> None:
    """Writes the checkpoint after an epoch."""
    arrays = {f"model_{i}": np.asarray(v.numpy()) for i, v in enumerate(model.variables)}
    arrays |= {f"optimizer_{i}": np.asarray(v.numpy()) for i, v in enumerate(optimizer.variables)}
    arrays["state"] = np.array(json.dumps(asdict(state)))
    write_atomically(directory / CHECKPOINT, lambda stream: np.savez(stream, **arrays))


def load(directory: Path, run_key: str) -> Checkpoint | None:
    """The folder's checkpoint, None when there is none.

    Raises:
        InputError: the folder holds another run's checkpoint.
    """
    path = directory / CHECKPOINT
    if not path.is_file():
        return None
    with np.load(path, allow_pickle=False) as archive:
        state = RunState(**json.loads(str(archive["state"])))
        _check_run_key(directory, state.run_key, run_key)
        count = {prefix: sum(name.startswith(prefix) for name in archive.files)
                 for prefix in ("model_", "optimizer_")}
        model_values = [archive[f"model_{i}"] for i in range(count["model_"])]
        optimizer_values = [archive[f"optimizer_{i}"] for i in range(count["optimizer_"])]
    return Checkpoint(state, model_values, optimizer_values)


def _check_run_key(directory: Path, found: str, expected: str) -> None:
    if found != expected:
        raise InputError(
            f"checkpoint folder {directory}: holds run {found}, not this run ({expected}); "
            "use a fresh folder for each run"
        )


def _assign(variables: list[Any], values: list[np.ndarray], what: str) -> None:
    if len(variables) != len(values):
        raise ValueError(f"checkpoint has {len(values)} {what} variables, the run {len(variables)}")
    for variable, value in zip(variables, values, strict=True):
        if tuple(variable.shape) != value.shape:
            raise ValueError(
                f"checkpoint's {what} variable {variable.path} has shape {value.shape}, "
                f"the run's {tuple(variable.shape)}"
            )
        variable.assign(value)


def restore(checkpoint: Checkpoint, model: Any, optimizer: Any) -> None:
    """Puts the saved values into the model's and the (built) optimizer's variables."""
    _assign(model.variables, checkpoint.model_values, "model")
    _assign(optimizer.variables, checkpoint.optimizer_values, "optimizer")


def write_result(directory: Path, result: TrainResult, state: RunState) -> None:
    """Marks the run as ended: result.json, then the checkpoint is removed."""
    document = {"run_key": state.run_key, "result": asdict(result), "history": state.history}
    text = json.dumps(document, indent=1, allow_nan=True).encode()
    write_atomically(directory / RESULT, lambda stream: stream.write(text))
    (directory / CHECKPOINT).unlink(missing_ok=True)
    for leftover in directory.glob(".*.tmp*"):
        leftover.unlink(missing_ok=True)


def read_result(directory: Path, run_key: str) -> TrainResult | None:
    """The outcome of an ended run in the folder, None while it has not ended."""
    path = directory / RESULT
    if not path.is_file():
        return None
    document = json.loads(path.read_text())
    _check_run_key(directory, document["run_key"], run_key)
    return TrainResult(**document["result"])
