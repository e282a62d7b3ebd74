"""What the trainer reports: one record per epoch, and the outcome of a run.

Plain dataclasses without Keras, so that the results store and the runner can import
them cheaply.

`EpochRecord` is the one definition of the per-epoch measurements: `EPOCH_FIELDS`,
the results store's `epochs` table (`results.store.models` generates its columns),
its rows (`EpochRow`) and the child's copy into the trial's user attributes are all
derived from its fields. Adding a measurement = one field here (default NaN, so that
the epochs stored before it read as "not measured") plus one Alembic migration that
adds its column.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Literal

Status = Literal["completed", "diverged", "stopped"]


@dataclass(frozen=True)
class EpochRecord:
    """One trained epoch, as Keras' history has it, plus the LR, the speed, the
    validation with the EMA weights, the test split, and the conv kernels' statistics.

    The fields after `images_per_second` are NaN where the run does not measure them
    (no EMA, validation is the test set, a diverged epoch).

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
        val_loss_ema, val_acc_ema: the same validation with the optimizer's moving
            averages of the weights (m = `ema_momentum`) in place of the weights.
        test_loss, test_acc: the test set, when validation is a split of the
            training set.
        weight_norm: the L2 norm of all conv kernels together (biases excluded).
        weight_norm_stage1, weight_norm_stage2, weight_norm_stage3: the same per
            ResNet stage (the stem's conv counts only in the total).
        effective_lr: lr/‖w‖ averaged over the scale-invariant kernels (those a
            BatchNormalization follows): the angular step Adam takes on them.
        angular_update: the angle in radians through which those kernels turned
            during the epoch, averaged over them.
        xent, val_xent: the training (epoch mean) and validation cross-entropy
            alone, without the L2 penalty that `loss` and `val_loss` include.
        val_loss_bn, val_acc_bn, val_loss_ema_bn, val_acc_ema_bn: validation of the
            weights and of the averages with the BatchNorm statistics recomputed on a
            subset of the training images (PreciseBN; `trainer.precise_bn`).
        train_loss_eval: the loss of that subset in inference mode with the stored
            statistics: ≫ `loss` shows the statistics, not the weights, failing.
        weight_norm_invariant, weight_norm_other: the norm of the scale-invariant
            conv kernels together, and of the other conv kernels.
        dense_kernel_norm, bn_gamma_norm: the head's kernel, every BatchNorm's γ.
        angle_per_step: the angle in radians a scale-invariant kernel turns through
            in one optimizer step, sampled during the epoch (`trainer.step_angle`).
        angle_equilibrium: the rotational equilibrium's angle per step,
            √(2λ·lr·(1 − β₁)/(1 + β₁)) (`trainer.step_angle`).
        weight_norm_equilibrium: the norm `weight_norm_invariant` settles at,
            √(lr·C/(2λ)) for kernels of C elements together.
        ema_horizon_epochs: the averages' horizon 1/((1 − m)·steps per epoch).
    """

    epoch: int
    loss: float
    acc: float
    val_loss: float
    val_acc: float
    lr: float
    seconds: float
    images_per_second: float
    val_loss_ema: float = math.nan
    val_acc_ema: float = math.nan
    test_loss: float = math.nan
    test_acc: float = math.nan
    weight_norm: float = math.nan
    weight_norm_stage1: float = math.nan
    weight_norm_stage2: float = math.nan
    weight_norm_stage3: float = math.nan
    effective_lr: float = math.nan
    angular_update: float = math.nan
    xent: float = math.nan
    val_xent: float = math.nan
    val_loss_bn: float = math.nan
    val_acc_bn: float = math.nan
    val_loss_ema_bn: float = math.nan
    val_acc_ema_bn: float = math.nan
    train_loss_eval: float = math.nan
    weight_norm_invariant: float = math.nan
    weight_norm_other: float = math.nan
    dense_kernel_norm: float = math.nan
    bn_gamma_norm: float = math.nan
    angle_per_step: float = math.nan
    angle_equilibrium: float = math.nan
    weight_norm_equilibrium: float = math.nan
    ema_horizon_epochs: float = math.nan

    def as_dict(self) -> dict[str, float | int]:
        """The record as a flat dict with exactly the field names as keys."""
        return dataclasses.asdict(self)


#: The keys of one epoch record, in the record's order.
EPOCH_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(EpochRecord))
#: The keys every epoch record has (the fields without a default: schema revision 0001).
REQUIRED_EPOCH_FIELDS: tuple[str, ...] = tuple(
    f.name for f in dataclasses.fields(EpochRecord) if f.default is dataclasses.MISSING
)
#: The measurements a run may not take (NaN in the record, NULL in the store): the
#: fields with a default, in the order their columns were added.
OPTIONAL_EPOCH_FIELDS: tuple[str, ...] = EPOCH_FIELDS[len(REQUIRED_EPOCH_FIELDS):]


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
