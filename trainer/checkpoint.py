"""A run's state on disk, written so that a kill at any moment loses at most one epoch.

The folder of a run holds, while it trains:

- `checkpoint.npz`: after every epoch, one file with the model's variables (weights,
  BatchNorm statistics and the augmentation's `SeedGenerator` state), the optimizer's
  variables (iteration count, Adam moments, EMA averages, loss scale) and a JSON
  header (run key, study instance, epochs done, history, best epoch). It is written
  to a temporary file and fsynced before it replaces the old one;
- `checkpoint.prev.npz`: the epoch before, kept until the next checkpoint is whole,
  so that a truncated latest file (a full disk, a file system that lost the tail of
  a write) costs one epoch, not the run. A damaged file is renamed `*.bad`.
- `best.weights.h5`: the weights of the epoch with the highest val_acc so far.

and when the run has ended (completed or diverged):

- `last.weights.h5`: the final weights (with EMA, the averages, as after `fit()`),
- `result.json`: the outcome and the full history; the checkpoints are deleted.

Every file names the run key and the study instance (the run's row in the database
that registered it) it belongs to: a folder left by another database, or by a deleted
and re-created one, is never taken for this run's progress or outcome.
"""

from __future__ import annotations

import json
import logging
import os
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np

from sweeps.errors import InputError
from sweeps.atomic_file import fsync_directory, write_atomically
from trainer.records import TrainResult

CHECKPOINT = "checkpoint.npz"
PREVIOUS = "checkpoint.prev.npz"
RESULT = "result.json"
BEST = "best.weights.h5"
LAST = "last.weights.h5"
#: What a damaged checkpoint raises when it is read: a truncated zip, a missing member,
#: a header that is not JSON, an array cut short.
DAMAGED = (zipfile.BadZipFile, EOFError, KeyError, ValueError, OSError, TypeError)

log = logging.getLogger(__name__)


@dataclass
class RunState:
    """What a run knows besides its variables.

    Args:
        run_key: the `RunConfig.run_key` the folder belongs to.
        instance: the study instance the folder belongs to (None: unbound, as for
            `sweep train`).
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
    instance: str | None = None


@dataclass
class Checkpoint:
    """A loaded checkpoint: the state and the variables' values in saved order."""

    state: RunState
    model_values: list[np.ndarray]
    optimizer_values: list[np.ndarray]


def save_weights_atomically(model: Any, path: Path) -> None:
    """`model.save_weights` (Keras' `.weights.h5`) through a temporary file."""
    temporary = path.with_name(f".{path.name[: -len('.weights.h5')]}.tmp.weights.h5")
    model.save_weights(str(temporary))
    with open(temporary, "rb+") as stream:
        os.fsync(stream.fileno())
    os.replace(temporary, path)
    fsync_directory(path.parent)


def save(directory: Path, model: Any, optimizer: Any, state: RunState) -> None:
    """Writes the checkpoint after an epoch; the previous one stays as `PREVIOUS`."""
    arrays = {f"model_{i}": np.asarray(v.numpy()) for i, v in enumerate(model.variables)}
    arrays |= {f"optimizer_{i}": np.asarray(v.numpy()) for i, v in enumerate(optimizer.variables)}
    arrays["state"] = np.array(json.dumps(asdict(state)))
    latest, previous = directory / CHECKPOINT, directory / PREVIOUS

    def write(stream: IO[bytes]) -> None:
        np.savez(stream, **arrays)
        stream.flush()
        os.fsync(stream.fileno())
        # The new file is whole on disk: only now may the old one step back. A kill
        # between the two renames leaves PREVIOUS, which `load` falls back to.
        if latest.exists():
            os.replace(latest, previous)

    write_atomically(latest, write)


def load(directory: Path, run_key: str, instance: str | None = None) -> Checkpoint | None:
    """The folder's newest whole checkpoint, None when there is none.

    A damaged file (truncated by a kill or a full disk) is renamed `*.bad`, logged
    with its path and error, and the previous epoch's checkpoint is taken instead.

    Args:
        directory: the run's folder.
        run_key: the run it must belong to.
        instance: the study instance it must belong to; None accepts any.

    Raises:
        InputError: the folder holds another run's or another study instance's
            checkpoint.
    """
    for name in (CHECKPOINT, PREVIOUS):
        path = directory / name
        if not path.is_file():
            continue
        try:
            loaded = _read(path)
        except DAMAGED as error:
            bad = _aside(path)
            os.replace(path, bad)
            log.warning("checkpoint %s is damaged (%s: %s): moved to %s; falling back to the epoch before",
                        path, type(error).__name__, error, bad.name)
            continue
        _check_owner(directory, loaded.state.run_key, run_key, loaded.state.instance, instance)
        return loaded
    return None


def _aside(path: Path) -> Path:
    """`checkpoint.npz.bad`, or `.bad.2`, … when an earlier bad file is kept there."""
    bad, number = path.with_name(path.name + ".bad"), 1
    while bad.exists():
        number += 1
        bad = path.with_name(f"{path.name}.bad.{number}")
    return bad


def _read(path: Path) -> Checkpoint:
    with np.load(path, allow_pickle=False) as archive:
        state = RunState(**json.loads(str(archive["state"])))
        count = {prefix: sum(name.startswith(prefix) for name in archive.files)
                 for prefix in ("model_", "optimizer_")}
        model_values = [archive[f"model_{i}"] for i in range(count["model_"])]
        optimizer_values = [archive[f"optimizer_{i}"] for i in range(count["optimizer_"])]
    return Checkpoint(state, model_values, optimizer_values)


def owner(directory: Path) -> tuple[str, str | None] | None:
    """(run key, instance) of the folder's outcome or newest readable checkpoint;
    None when it holds neither (a new folder, or only logs and damaged files)."""
    result = directory / RESULT
    if result.is_file():
        try:
            document = json.loads(result.read_text())
            return document["run_key"], document.get("instance")
        except (ValueError, KeyError, OSError):
            pass
    for name in (CHECKPOINT, PREVIOUS):
        path = directory / name
        if path.is_file():
            try:
                with np.load(path, allow_pickle=False) as archive:
                    state = json.loads(str(archive["state"]))
                return state["run_key"], state.get("instance")
            except DAMAGED:
                continue
    return None


def _check_owner(
    directory: Path, found_key: str, expected_key: str, found: str | None, expected: str | None
) -> None:
    if found_key != expected_key:
        raise InputError(
            f"checkpoint folder {directory}: holds run {found_key}, not this run ({expected_key}); "
            "use a fresh folder for each run"
        )
    if expected is not None and found != expected:
        raise InputError(
            f"checkpoint folder {directory}: was written for another study instance "
            f"({found or 'unknown'}, not {expected}): a database that was deleted or "
            "replaced; move the folder away"
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
    document = {
        "run_key": state.run_key, "instance": state.instance, "result": asdict(result),
        "history": state.history,
    }
    text = json.dumps(document, indent=1, allow_nan=True).encode()
    write_atomically(directory / RESULT, lambda stream: stream.write(text))
    (directory / CHECKPOINT).unlink(missing_ok=True)
    (directory / PREVIOUS).unlink(missing_ok=True)
    for leftover in directory.glob(".*.tmp*"):
        leftover.unlink(missing_ok=True)


def read_result(directory: Path, run_key: str, instance: str | None = None) -> TrainResult | None:
    """The outcome of an ended run in the folder, None while it has not ended.

    Raises:
        InputError: the outcome is another run's or another study instance's.
    """
    path = directory / RESULT
    if not path.is_file():
        return None
    try:
        document = json.loads(path.read_text())
        found_key, found = document["run_key"], document.get("instance")
        result = TrainResult(**document["result"])
    except (ValueError, KeyError, TypeError, OSError) as error:
        # Written atomically, so only a disk that lost data gets here: train again
        # rather than fail every attempt on the same file.
        bad = _aside(path)
        os.replace(path, bad)
        log.warning("outcome %s is damaged (%s: %s): moved to %s; the run continues from its checkpoint",
                    path, type(error).__name__, error, bad.name)
        return None
    _check_owner(directory, found_key, run_key, found, instance)
    return result
