"""The post's piecewise-linear learning-rate schedule as a Keras `LearningRateSchedule`.

Keras calls a schedule with the optimizer's iteration count, once per step; the post's
breakpoints are in epochs. The schedule converts the step into a fractional epoch
(`step / steps_per_epoch`) and interpolates, with the semantics of
`sweeps.config.Schedule.value_at`: constant at the first value before the first
breakpoint, linear between breakpoints, constant after the last, and two breakpoints
at one epoch a step to the later value.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="trainer")
class PiecewiseLinear(keras.optimizers.schedules.LearningRateSchedule):
    """A piecewise-linear learning rate over fractional epochs, evaluated per step.

    Args:
        breakpoints: `(learning_rate, epoch)` pairs in learning rates (not factors η),
            epochs non-decreasing, as `sweeps.config.Schedule.absolute(α)` gives them.
        steps_per_epoch: optimizer steps per epoch, `ceil(train images / batch size)`.
    """

    def __init__(self, breakpoints: Sequence[Sequence[float]], steps_per_epoch: int) -> None:
        if not breakpoints:
            raise ValueError("PiecewiseLinear needs at least one (learning_rate, epoch) pair")
        if steps_per_epoch < 1:
            raise ValueError(f"steps_per_epoch must be >= 1, got {steps_per_epoch}")
        self.breakpoints = [(float(value), float(epoch)) for value, epoch in breakpoints]
        self.steps_per_epoch = int(steps_per_epoch)

    def __call__(self, step: Any) -> Any:
        epoch = ops.divide(ops.cast(step, "float32"), float(self.steps_per_epoch))
        values = [value for value, _ in self.breakpoints]
        epochs = [e for _, e in self.breakpoints]
        # Built from the last segment backwards: each earlier segment overrides the
        # value where the epoch lies before its end, so the earliest segment that
        # contains the epoch wins. Zero-width segments (a step) are skipped, which
        # gives the later value at the step's epoch, as bisect_right does.
        lr = ops.convert_to_tensor(values[-1], "float32")
        for j in range(len(values) - 2, -1, -1):
            e0, e1 = epochs[j], epochs[j + 1]
            if e1 <= e0:
                continue
            slope = (values[j + 1] - values[j]) / (e1 - e0)
            segment = ops.add(values[j], ops.multiply(slope, ops.subtract(epoch, e0)))
            lr = ops.where(ops.less(epoch, e1), segment, lr)
        return ops.where(ops.less(epoch, epochs[0]), values[0], lr)

    def get_config(self) -> dict[str, Any]:
        return {
            "breakpoints": [list(pair) for pair in self.breakpoints],
            "steps_per_epoch": self.steps_per_epoch,
        }


def schedule_for(config: Any, steps_per_epoch: int) -> PiecewiseLinear:
    """The schedule of a `RunConfig`: its breakpoints in learning rates, or constant α.

    Args:
        config: a `sweeps.config.RunConfig`.
        steps_per_epoch: optimizer steps per epoch.
    """
    if config.schedule is None:
        pairs = [(config.learning_rate, 0.0)]
    else:
        pairs = config.schedule.absolute(config.learning_rate)
    return PiecewiseLinear(pairs, steps_per_epoch)
