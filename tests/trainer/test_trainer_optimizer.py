"""AdamW as the post uses it: decay λ·lr per step, EMA, exclusion, end-of-run averages."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.backend


def _tiny_model():
    import keras

    keras.utils.set_random_seed(1)
    model = keras.Sequential([
        keras.Input((3,)), keras.layers.Dense(2), keras.layers.BatchNormalization()
    ])
    # No zeros, so that a decay shows in every variable.
    model.layers[0].bias.assign(np.array([0.5, -0.25], np.float32))
    model.layers[1].beta.assign(np.array([0.1, 0.2], np.float32))
    return model


def _zero_step(optimizer, model) -> None:
    """One optimizer step with zero gradients, the way the backend's fit() applies it."""
    import keras

    variables = model.trainable_variables
    grads = [keras.ops.zeros(v.shape, v.dtype) for v in variables]
    if keras.backend.backend() != "jax":
        optimizer.apply(grads, variables)
        return
    # JAX trains statelessly (LossScaleOptimizer's stateful apply cannot run on JAX).
    new_values, new_state = optimizer.stateless_apply(
        [v.value for v in optimizer.variables], grads, [v.value for v in variables]
    )
    for variable, value in zip(variables, new_values, strict=True):
        variable.assign(value)
    for variable, value in zip(optimizer.variables, new_state, strict=True):
        variable.assign(value)


@pytest.mark.parametrize("precision", ["float32", "mixed_float16"])
def test_zero_gradient_step_shrinks_weights_by_lambda_lr(tiny_config, precision: str) -> None:
    from trainer.optimizer import build_optimizer, current_learning_rate

    config = tiny_config(
        weight_decay=0.2, learning_rate=8e-4, epochs=60,
        schedule="[8.e-4, 20][8.e-5, 40][1.e-5, 50][4.e-6, 60]",
    )
    model = _tiny_model()
    optimizer = build_optimizer(config, model, steps_per_epoch=782, dtype_policy=precision)
    # Half way down the second phase: the decay must use the *current* scheduled LR.
    optimizer.iterations.assign(30 * 782)
    lr = current_learning_rate(optimizer)
    assert lr == pytest.approx(4.4e-4, rel=1e-6)
    before = [v.numpy().copy() for v in model.trainable_variables]
    _zero_step(optimizer, model)
    for old, variable in zip(before, model.trainable_variables, strict=True):
        np.testing.assert_allclose(variable.numpy(), old * (1 - 0.2 * lr), rtol=1e-6)
        assert not np.array_equal(variable.numpy(), old)


def test_excluded_biases_and_batchnorm_do_not_decay(tiny_config) -> None:
    from trainer.optimizer import build_optimizer

    config = tiny_config(weight_decay=0.5, learning_rate=1e-2, exclude_from_weight_decay=True)
    model = _tiny_model()
    optimizer = build_optimizer(config, model, steps_per_epoch=10)
    before = {v.path: v.numpy().copy() for v in model.trainable_variables}
    _zero_step(optimizer, model)
    for variable in model.trainable_variables:
        old = before[variable.path]
        if variable.name == "kernel":
            np.testing.assert_allclose(variable.numpy(), old * (1 - 0.5 * 1e-2), rtol=1e-6)
        else:  # bias, gamma, beta
            np.testing.assert_array_equal(variable.numpy(), old)


def test_ema_waits_for_the_end_of_the_run(tiny_config) -> None:
    """fit() once per epoch must not put the averages into the model after each epoch."""
    from trainer.optimizer import adamw_of, build_optimizer

    config = tiny_config(use_ema=True, ema_momentum=0.9, learning_rate=1e-2)
    model = _tiny_model()
    optimizer = build_optimizer(config, model, steps_per_epoch=4)
    model.compile(optimizer=optimizer, loss="mse")
    x = np.random.default_rng(0).normal(size=(32, 3)).astype("float32")
    y = np.random.default_rng(1).normal(size=(32, 2)).astype("float32")
    for _ in range(2):
        model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    averages = [v.numpy() for v in adamw_of(optimizer)._model_variables_moving_average]
    raw = [v.numpy() for v in model.trainable_variables]
    assert any(not np.allclose(a, r) for a, r in zip(averages, raw, strict=True))
    adamw_of(optimizer).finalize_run(model.trainable_variables)
    for average, variable in zip(averages, model.trainable_variables, strict=True):
        np.testing.assert_array_equal(variable.numpy(), average)


def test_ema_follows_the_momentum(tiny_config) -> None:
    from trainer.optimizer import adamw_of, build_optimizer

    config = tiny_config(use_ema=True, ema_momentum=0.98, weight_decay=0.1, learning_rate=1e-2)
    model = _tiny_model()
    optimizer = build_optimizer(config, model, steps_per_epoch=4)
    _zero_step(optimizer, model)  # first step: the average starts at the weights
    first = [v.numpy().copy() for v in model.trainable_variables]
    _zero_step(optimizer, model)
    for w1, average, variable in zip(
        first, adamw_of(optimizer)._model_variables_moving_average, model.trainable_variables,
        strict=True,
    ):
        np.testing.assert_allclose(average.numpy(), 0.98 * w1 + 0.02 * variable.numpy(), rtol=1e-6)
