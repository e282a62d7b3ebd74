"""An epoch's measurements after its training: validation with the weights and with
their averages, the test set, the conv kernels' statistics, and the BatchNorm-true
validation (`trainer.precise_bn`); and, for runs that share a training and differ only
in what they measure, their own record (`member_record`).

Every function leaves the model and the optimizer as it found them: the averages are
swapped in and out exactly (`trainer.ema`), the BatchNorm-true passes put back every
variable (`precise_bn.everything_restored`).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from trainer.records import EpochRecord

if TYPE_CHECKING:
    from sweeps.config import RunConfig


def evaluate_logs(model: Any, x: Any, y: Any, batch_size: int) -> dict[str, float]:
    """Keras' evaluation logs (`loss`, `accuracy`, `xent`); never augments: the layer
    is the identity outside training."""
    logs = model.evaluate(x, y, batch_size=batch_size, verbose=0, return_dict=True)
    return {name: float(value) for name, value in logs.items()}


def evaluate(model: Any, x: Any, y: Any, batch_size: int) -> tuple[float, float]:
    """(loss, accuracy)."""
    logs = evaluate_logs(model, x, y, batch_size)
    return logs["loss"], logs["accuracy"]


def batch_norm_true(
    config: RunConfig, data: Any, model: Any, optimizer: Any, subset: Any, recompute: Any,
    averages: list[Any] | None = None, raw: bool = True,
) -> dict[str, float]:
    """Validation with the BatchNorm statistics recomputed for the weights (unless not
    `raw`), and for the averages (Keras', or `averages`); the subset's inference-mode
    loss; every variable put back after."""
    from trainer.ema import averaged_weights
    from trainer.precise_bn import everything_restored

    x, y = data.x_train[subset], data.y_train[subset]
    measured: dict[str, float] = {}
    with everything_restored(model, optimizer):
        if raw:
            measured["train_loss_eval"] = evaluate(model, x, y, config.batch_size)[0]
            recompute(x, config.batch_size)
            measured["val_loss_bn"], measured["val_acc_bn"] = evaluate(
                model, data.x_val, data.y_val, config.batch_size
            )
        if config.use_ema and config.evaluate_ema:
            with averaged_weights(model, optimizer, averages):
                recompute(x, config.batch_size)
                ema = evaluate(model, data.x_val, data.y_val, config.batch_size)
            measured["val_loss_ema_bn"], measured["val_acc_ema_bn"] = ema
    return measured


def measure_epoch(
    config: RunConfig, data: Any, model: Any, optimizer: Any, kernels: Any, lr: float, before: Any,
    bn: tuple[Any, Any] | None = None,
) -> dict[str, float]:
    """An epoch's validation (raw, and averaged weights), test and weight statistics;
    with `bn` (the subset's indices and a `StatisticsRecomputer`) the BatchNorm-true ones."""
    from trainer.ema import averaged_weights
    from trainer.weight_stats import weight_stats

    measured = weight_stats(kernels, lr, before)
    logs = evaluate_logs(model, data.x_val, data.y_val, config.batch_size)
    measured["val_loss"], measured["val_acc"], measured["val_xent"] = logs["loss"], logs["accuracy"], logs["xent"]
    if config.use_ema and config.evaluate_ema:
        with averaged_weights(model, optimizer):
            ema = evaluate(model, data.x_val, data.y_val, config.batch_size)
        measured["val_loss_ema"], measured["val_acc_ema"] = ema
    if data.x_test is not None:
        measured["test_loss"], measured["test_acc"] = evaluate(model, data.x_test, data.y_test, config.batch_size)
    if bn is not None:
        measured |= batch_norm_true(config, data, model, optimizer, *bn)
    return measured


def member_record(
    record: EpochRecord, member: RunConfig, averages: list[Any], data: Any, model: Any, optimizer: Any,
    steps_per_epoch: int, bn: tuple[Any, Any] | None,
) -> EpochRecord:
    """The record of a run that shares this training and differs only in what it
    measures: the raw columns are the training's own; the EMA columns come from its
    own average (`averages`), the BatchNorm-true ones from its subset size."""
    import dataclasses

    from trainer.ema import averaged_weights
    from trainer.precise_bn import bn_subset, subset_size

    nan = math.nan
    changed: dict[str, float] = dict.fromkeys(
        ("val_loss_ema", "val_acc_ema", "val_loss_ema_bn", "val_acc_ema_bn"), nan
    )
    changed["ema_horizon_epochs"] = ema_horizon(member, steps_per_epoch)
    if not math.isfinite(record.val_loss):  # a diverged epoch: nothing measured
        return dataclasses.replace(record, **changed)
    if member.use_ema and member.evaluate_ema:
        with averaged_weights(model, optimizer, averages):
            changed["val_loss_ema"], changed["val_acc_ema"] = evaluate(
                model, data.x_val, data.y_val, member.batch_size
            )
    size = subset_size(member.bn_subset_size, len(data.x_train))
    if not size:
        changed |= dict.fromkeys(("val_loss_bn", "val_acc_bn", "train_loss_eval"), nan)
    else:
        same_subset = bn is not None and size == len(bn[0])
        recompute = bn[1] if bn is not None else _recomputer(model)
        subset = bn[0] if same_subset else bn_subset(len(data.x_train), size, member.seed)
        changed |= batch_norm_true(member, data, model, optimizer, subset, recompute, averages, raw=not same_subset)
    return dataclasses.replace(record, **changed)


def _recomputer(model: Any) -> Any:
    from trainer.precise_bn import StatisticsRecomputer

    return StatisticsRecomputer(model)


def ema_horizon(config: RunConfig, steps_per_epoch: int) -> float:
    """1/((1 − m)·steps per epoch): how many epochs the averages look back."""
    return 1.0 / ((1.0 - config.ema_momentum) * steps_per_epoch) if config.use_ema else math.nan
