"""`sweep train FILE --run LABEL`: one run of a sweep file, without Optuna, for debugging.

Prints a Keras-style line per epoch. The first Ctrl-C stops the run after the current
epoch's checkpoint (run the same command with `--checkpoints DIR` to continue); a
second one aborts at once.
"""

from __future__ import annotations

import math
import re
import sys
import tempfile
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sweeps.errors import InputError
from trainer.interrupts import Interrupts
from trainer.native_logs import native_logs_to
from trainer.records import EpochRecord

EXIT_STATUS = {"completed": 0, "diverged": 1, "stopped": 130}
#: The run's log in its checkpoint folder, named as a worker's run's log.
LOG_NAME = "train.log"
#: Characters of the label in a fresh checkpoint folder's name.
MAX_SLUG = 100


#: The shortest run-key prefix `--run` takes: shorter ones ("1") read as labels or #N.
MIN_KEY_PREFIX = 4
#: Labels an error lists before it says how many more there are.
LISTED_LABELS = 20


def select_trial(trials: Sequence[Any], run: str, file: str) -> Any:
    """The trial `--run` names: a label (`1`, `3A`), `#N` (1-based) or a run-key prefix
    of at least `MIN_KEY_PREFIX` hex digits, tried in that order.

    Raises:
        InputError: no trial, or several, match; the message lists the labels.
    """
    matches = [trial for trial in trials if trial.label == run]
    if not matches and re.fullmatch(r"#\d+", run):
        matches = [trial for trial in trials if trial.number == int(run[1:])]
    if not matches and re.fullmatch(rf"[0-9a-f]{{{MIN_KEY_PREFIX},}}", run):
        matches = [trial for trial in trials if trial.run_key.startswith(run)]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise InputError(
            f"--run {run}: matches {len(matches)} runs of {file} "
            f"({', '.join(trial.label for trial in matches)}); give a longer run key"
        )
    shown = [trial.label for trial in trials[:LISTED_LABELS]]
    more = f" and {len(trials) - LISTED_LABELS} more" if len(trials) > LISTED_LABELS else ""
    labels = ", ".join(shown) + more or "none"
    hint = ""
    if run.isdigit() and 1 <= int(run) <= len(trials):
        hint = f"; did you mean #{run}, the run labelled {trials[int(run) - 1].label!r}?"
    raise InputError(
        f"--run {run}: no such run in {file}{hint}; its labels: {labels} "
        f"(or #1…#{len(trials)}, or a run key of {MIN_KEY_PREFIX}+ hex digits)"
    )


def progress_line(record: EpochRecord, epochs: int) -> str:
    """One epoch as Keras prints it, plus the LR and the speed."""
    def metric(value: float) -> str:
        return "nan" if math.isnan(value) else f"{value:.4f}"

    return (
        f"Epoch {record.epoch}/{epochs} - {record.seconds:.0f}s - loss: {metric(record.loss)} "
        f"- acc: {metric(record.acc)} - val_loss: {metric(record.val_loss)} "
        f"- val_acc: {metric(record.val_acc)} - lr: {record.lr:.4e} "
        f"- {record.images_per_second:.0f} img/s"
    )


def _stopping_message() -> None:
    print("\nstopping after this epoch (Ctrl-C again to abort)", file=sys.stderr, flush=True)


def _abort() -> None:
    raise KeyboardInterrupt


@contextmanager
def _two_stage_interrupts() -> Iterator[Interrupts]:
    """The first Ctrl-C (or SIGTERM) asks the run to stop after the epoch; the second
    interrupts. Signals are handled only in the main thread."""
    interrupts = Interrupts(on_first=_stopping_message, on_second=_abort)
    main = threading.current_thread() is threading.main_thread()
    if main:
        interrupts.install()
    try:
        yield interrupts
    finally:
        if main:
            interrupts.uninstall()


def train_command(file: str, run: str, *, data_dir: str | None, checkpoints: str | None) -> int:
    """Trains one run of a sweep file and prints a line per epoch.

    Args:
        file: the sweep file.
        run: the run's label, `#N` or a run-key prefix.
        data_dir: the dataset's files (default: Keras' loader and cache).
        checkpoints: the run's checkpoint folder (default: a fresh temporary one).

    Returns:
        0 when completed, 1 when diverged, 130 when stopped by Ctrl-C.
    """
    from sweeps.sweep_file import load_sweep

    sweep = load_sweep(file)
    trial = select_trial(sweep.trials(), run, file)
    config = trial.config
    if checkpoints is None:
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", trial.label)[:MAX_SLUG]  # a label may be 1000 characters
        folder = Path(tempfile.mkdtemp(prefix=f"sweep-train-{slug}-"))
    else:
        folder = Path(checkpoints)
    comment = f" ({trial.comment})" if trial.comment else ""
    print(f"run {trial.label}{comment}, #{trial.number}, key {trial.run_key}", flush=True)
    print(
        f"ResNet{config.depth}v2 on {config.dataset}, {config.epochs} epochs, batch "
        f"{config.batch_size}, λ {config.weight_decay:g}, m {config.ema_momentum:g}, "
        f"schedule {config.schedule_notation()}",
        flush=True,
    )
    print(f"checkpoints: {folder} (continue with --checkpoints {folder})", flush=True)
    folder.mkdir(parents=True, exist_ok=True)
    # TensorFlow's own log lines go to the run's log, as a worker's run's do.
    print("importing Keras and TensorFlow …", flush=True)
    with open(folder / LOG_NAME, "ab") as log, native_logs_to(log), _two_stage_interrupts() as interrupt:
        from trainer.train import train

        result = train(
            config,
            lambda record: print(progress_line(record, config.epochs), flush=True),
            folder,
            data_dir=data_dir,
            should_stop=lambda: interrupt.stopping,
        )
    best = (
        f"best val_acc {result.best_val_acc:.4f} at epoch {result.best_epoch}"
        if result.best_val_acc is not None else "no validation yet"
    )
    print(f"{result.status}: {result.failure_reason or f'{result.epochs_completed} epochs'}, {best}")
    versions = result.versions
    print(
        f"keras {versions.get('keras')}, {versions.get('backend')} {versions.get('backend_version')}, "
        f"{versions.get('device')}"
    )
    return EXIT_STATUS[result.status]
