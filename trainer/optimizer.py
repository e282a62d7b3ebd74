"""The post's optimizer: Keras `AdamW` with the schedule, decoupled decay and EMA.

Keras applies the decay before each Adam step as `w -= w · weight_decay · lr` with the
*current* scheduled LR, so the post's λ is `weight_decay` and the decay per step is
λ·lr. With `use_ema`, the optimizer keeps `average = m·average + (1 − m)·w` per step
and, with `ema_overwrite_frequency=None`, puts the averages into the model only when
`fit()` ends.

The trainer calls `fit()` once per epoch (so that it can report and checkpoint between
epochs); with stock AdamW that would overwrite the weights with their averages after
every epoch, a different training from the post's one long `fit()`. `EpochwiseAdamW`
therefore defers that overwrite until the trainer finalizes the run.
"""

from __future__ import annotations

from typing import Any

import keras

from trainer.schedule import schedule_for

# Variable names of biases and BatchNorm's γ/β (Keras 3 names variables by role).
NO_DECAY_NAMES = ("bias", "gamma", "beta")


@keras.saving.register_keras_serializable(package="trainer")
class EpochwiseAdamW(keras.optimizers.AdamW):
    """Keras AdamW whose end-of-`fit()` EMA overwrite waits for `finalize_run()`.

    With `more_ema_momenta` it keeps one more moving average per momentum beside
    Keras' own (same formula, same step, inside the compiled train step), so that runs
    that differ only in m share one training (`sweep_runner`'s groups). They are
    optimizer variables: checkpointed and restored with the others.

    Args:
        more_ema_momenta: momenta of the further averages (none: stock Keras).
        **kwargs: those of `keras.optimizers.AdamW`.
    """

    def __init__(self, more_ema_momenta: tuple[float, ...] = (), **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._run_finished = False
        self.more_ema_momenta = tuple(float(m) for m in more_ema_momenta)
        self.more_averages: list[list[Any]] = []

    def build(self, variables: list[Any]) -> None:
        if self.built:
            return
        super().build(variables)
        self.more_averages = [
            self.add_optimizer_variables(variables, f"average_m{index}") for index in range(len(self.more_ema_momenta))
        ]

    def _update_model_variables_moving_average(self, trainable_variables: list[Any]) -> None:
        super()._update_model_variables_moving_average(trainable_variables)
        if not self.use_ema:
            return
        ops = keras.ops
        for momentum_value, averages in zip(self.more_ema_momenta, self.more_averages, strict=True):
            for var, average in zip(trainable_variables, averages, strict=True):
                if average is None:
                    continue
                # Keras' own update (base_optimizer), with this momentum.
                momentum = ops.multiply(ops.cast(ops.not_equal(self.iterations, 0), var.dtype), momentum_value)
                average.assign(ops.add(ops.multiply(momentum, average), ops.multiply(ops.subtract(1, momentum), var)))

    def finalize_variable_values(self, var_list: list[Any]) -> None:
        # Called by every fit() at its end; only the run's end counts.
        if self._run_finished:
            super().finalize_variable_values(var_list)

    def finalize_run(self, var_list: list[Any]) -> None:
        """The end of training: with EMA, the model's weights become the averages."""
        self._run_finished = True
        super().finalize_variable_values(var_list)


def build_optimizer(
    config: Any, model: keras.Model, steps_per_epoch: int, dtype_policy: str = "float32",
    more_ema_momenta: tuple[float, ...] = (),
) -> keras.optimizers.Optimizer:
    """The run's AdamW, built on the model's trainable variables.

    Under `mixed_float16` it is wrapped in a `LossScaleOptimizer` (the model's own
    policy stays float32, so `compile(auto_scale_loss=True)` would not wrap it).

    Args:
        config: a `sweeps.config.RunConfig`.
        model: the model to train.
        steps_per_epoch: optimizer steps per epoch, for the schedule.
        dtype_policy: the resolved precision.
        more_ema_momenta: momenta of further averages (`EpochwiseAdamW`).
    """
    optimizer: keras.optimizers.Optimizer = EpochwiseAdamW(
        learning_rate=schedule_for(config, steps_per_epoch),
        weight_decay=config.weight_decay,
        beta_1=config.beta_1,
        beta_2=config.beta_2,
        use_ema=config.use_ema,
        ema_momentum=config.ema_momentum,
        ema_overwrite_frequency=config.ema_overwrite_frequency,
        more_ema_momenta=more_ema_momenta,
    )
    if config.exclude_from_weight_decay:
        # Must precede build(); by variable, so that a layer named "beta…" is no surprise.
        optimizer.exclude_from_weight_decay(
            var_list=[v for v in model.trainable_variables if v.name in NO_DECAY_NAMES]
        )
    if dtype_policy == "mixed_float16":
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    optimizer.build(model.trainable_variables)
    return optimizer


def adamw_of(optimizer: keras.optimizers.Optimizer) -> EpochwiseAdamW:
    """The AdamW inside a possible LossScaleOptimizer."""
    return getattr(optimizer, "inner_optimizer", optimizer)


def current_learning_rate(optimizer: keras.optimizers.Optimizer) -> float:
    """The schedule's value at the optimizer's iteration count."""
    return float(keras.ops.convert_to_numpy(adamw_of(optimizer).learning_rate))
