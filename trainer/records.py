"""What the trainer reports: one record per epoch, and the outcome of a run.

Plain dataclasses without Keras, so that the results store and the runner can import
them cheaply.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Literal

Status = Literal["completed", "diverged", "stopped"]


@dataclass(frozen=True)
class EpochRecord:
    """One trained epoch, as Keras' history has it plus the LR and the speed.

    Args:
        epoch: 1-based, as Keras prints it.
        loss: mean training loss over the epoch (including any L2 penalty).
        acc: mean training accuracy over the epoch.
        val_loss: validation loss after the epoch (NaN when the epoch diverged).
        val_acc: validation accuracy after the epoch (NaN when the epoch diverged).
        lr: the learning rate at the epoch's end (the schedule at the optimizer's
            iteration count after the epoch's last step).
        seconds: the epoch's wall time, training and validation.
        images_per_second: training images per second of the epoch's training time.
    """

    epoch: int
    loss: float
    acc: float
    val_loss: float
    val_acc: float
    lr: float
    seconds: float
    images_per_second: float

    def as_dict(self) -> dict[str, float | int]:
        """The record as a flat dict with exactly the field names as keys."""
        return dataclasses.asdict(self)


@dataclass
class TrainResult:
    """How a run ended.

    Args:
        status: `completed` (all epochs), `diverged` (NaN or infinite loss) or
            `stopped` (`should_stop()` returned true; the run can continue).
        epochs_completed: epochs with finite loss, across all starts of the run.
        diverged_at: the 1-based epoch whose loss was NaN or infinite, else None.
        best_val_acc: the highest validation accuracy, None before any epoch.
        best_epoch: the 1-based epoch of `best_val_acc` (the first, on ties).
        versions: `keras`, `backend`, `backend_version` and `device`.
        failure_reason: why the run did not complete, e.g. "diverged at epoch 3".
    """

    status: Status
    epochs_completed: int
    diverged_at: int | None = None
    best_val_acc: float | None = None
    best_epoch: int | None = None
    versions: dict[str, str] = field(default_factory=dict)
    failure_reason: str | None = None
