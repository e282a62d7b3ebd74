"""Evaluating with the optimizer's moving averages of the weights, then putting the
training weights back exactly.

Keras keeps `average = m·average + (1 − m)·w` per step (`use_ema`) and writes the
averages into the model only when training ends. To see each epoch what the averages
would score, the weights are copied aside, the averages written in (Keras' own
`finalize_variable_values` of the AdamW class), and the copies assigned back. Keras'
`SwapEMAWeights` swaps arithmetically on TensorFlow (a + b − a), which is not exact in
floating point; a copy is, so training continues on bit-for-bit the same weights and
does not depend on m (unless `ema_overwrite_frequency` writes averages in).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import keras
import numpy as np


@contextmanager
def averaged_weights(
    model: keras.Model, optimizer: keras.optimizers.Optimizer, averages: list[Any] | None = None
) -> Iterator[None]:
    """Within the block, the model's trainable weights are the optimizer's averages.

    Args:
        model: the model being trained.
        optimizer: its AdamW with `use_ema`, possibly inside a LossScaleOptimizer.
        averages: one of `EpochwiseAdamW.more_averages` (another m) instead of Keras'
            own averages.

    Raises:
        ValueError: the optimizer keeps no averages.
    """
    adamw: Any = getattr(optimizer, "inner_optimizer", optimizer)
    if not getattr(adamw, "use_ema", False):
        raise ValueError("averaged_weights: the optimizer has use_ema=False, so no averages")
    variables = model.trainable_variables
    # np.array copies: convert_to_numpy may share the variable's buffer on CPU.
    raw = [np.array(keras.ops.convert_to_numpy(v), copy=True) for v in variables]
    if averages is None:
        keras.optimizers.AdamW.finalize_variable_values(adamw, variables)
    else:
        for variable, average in zip(variables, averages, strict=True):
            if average is not None:
                variable.assign(average)
    # On JAX `assign` binds the very array of the average, and evaluate() donates the
    # model's buffers: the averages would be deleted. Each weight gets a copy of its own.
    for variable in variables:
        variable.assign(keras.ops.copy(variable.value))
    try:
        yield
    finally:
        for variable, value in zip(variables, raw, strict=True):
            variable.assign(value)
