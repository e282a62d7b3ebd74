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


def load(
    directory: Path, run_key: str, instance: str | None = None, *, model: Any = None, optimizer: Any = None
) -> Checkpoint | None:
    """The folder's newest intact checkpoint of this run, None when there is none.

    A damaged file is renamed `*.bad` and logged with its path and what is wrong with
    it, and the checkpoint before is taken instead: a file cut short (a kill, a full
    disk), a directory or anything else that is not a file, another run's file beside
    this run's own, and, given the model and optimizer, arrays they cannot take
    (another depth). A checkpoint without an intact one before it means a fresh start.

    Args:
        directory: the run's folder.
        run_key: the run it must belong to.
        instance: the study instance it must belong to; None accepts any.
        model, optimizer: the built run whose variables the checkpoint must fit.

    Raises:
        InputError: the folder holds only another run's or another study instance's
            checkpoints: it is another run's folder.
    """
    foreign: list[tuple[Path, str]] = []
    candidates = [directory / name for name in (CHECKPOINT, PREVIOUS)]
    # Not a file (a directory): the next save could not replace it, so it goes now,
    # even when the newer file is intact.
    for path in candidates:
        if (path.exists() or path.is_symlink()) and not path.is_file():
            set_aside(path, "not a file (a directory?)")
    for path in candidates:
        if not path.is_file():
            continue
        try:
            loaded = _read(path)
        except DAMAGED as error:
            set_aside(path, f"{type(error).__name__}: {error}")
            continue
        if (problem := _owner_problem(directory, loaded.state, run_key, instance)) is not None:
            foreign.append((path, problem))
            continue
        if model is not None and (misfit := _misfit(loaded, model, optimizer)) is not None:
            set_aside(path, misfit)
            continue
        for other, problem in foreign:  # another run's file beside this run's own
            set_aside(other, problem)
        return loaded
    if foreign:
        raise InputError(foreign[0][1])
    return None


def trained_before(directory: Path) -> bool:
    """Whether the run's folder shows epochs trained earlier (best weights, a file set
    aside): a start from epoch 1 there means its checkpoints were lost."""
    return (directory / BEST).exists() or any(directory.glob("checkpoint*.bad*"))


def set_aside(path: Path, reason: str) -> Path:
    """Renames a damaged file `*.bad` (kept for a look) and logs why, for the run's log.

    Returns:
        Where it went.
    """
    bad = _aside(path)
    os.replace(path, bad)
    log.warning("checkpoint %s is damaged (%s): moved to %s; falling back to the epoch before", path, reason, bad.name)
    return bad


def _misfit(loaded: Checkpoint, model: Any, optimizer: Any) -> str | None:
    """Why the checkpoint's arrays cannot go into the run's variables, or None."""
    for variables, values, what in (
        (model.variables, loaded.model_values, "model"),
        (optimizer.variables if optimizer is not None else None, loaded.optimizer_values, "optimizer"),
    ):
        if variables is None:
            continue
        if len(variables) != len(values):
            return f"{len(values)} {what} variables, the run has {len(variables)}: another model's file"
        for variable, value in zip(variables, values, strict=True):
            if tuple(variable.shape) != value.shape:
                return (f"{what} variable {variable.path} has shape {value.shape}, the run's is "
                        f"{tuple(variable.shape)}: another model's file")
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


def owners(directory: Path) -> set[tuple[str, str | None]]:
    """(run key, instance) of each readable outcome and checkpoint in the folder: a
    folder with none of the run's own is another run's (or another database's)."""
    found: set[tuple[str, str | None]] = set()
    result = directory / RESULT
    if result.is_file():
        try:
            document = json.loads(result.read_text())
            found.add((document["run_key"], document.get("instance")))
        except (ValueError, KeyError, OSError, TypeError):
            pass
    for name in (CHECKPOINT, PREVIOUS):
        path = directory / name
        if path.is_file():
            try:
                with np.load(path, allow_pickle=False) as archive:
                    state = json.loads(str(archive["state"]))
                found.add((state["run_key"], state.get("instance")))
            except DAMAGED:
                continue
    return found


def _owner_problem(directory: Path, state: RunState, run_key: str, instance: str | None) -> str | None:
    """Why a checkpoint is not this run's, or None."""
    if state.run_key != run_key:
        return (f"checkpoint folder {directory}: holds run {state.run_key}, not this run ({run_key}); "
                "use a fresh folder for each run")
    if instance is not None and state.instance != instance:
        return (f"checkpoint folder {directory}: was written for another study instance "
                f"({state.instance or 'unknown'}, not {instance}): a database that was deleted or "
                "replaced; move the folder away")
    return None


def _check_owner(
    directory: Path, found_key: str, expected_key: str, found: str | None, expected: str | None
) -> None:
    state = RunState(found_key, instance=found)
    if (problem := _owner_problem(directory, state, expected_key, expected)) is not None:
        raise InputError(problem)


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
