"""BatchNorm-true validation: the BatchNorm statistics recomputed for the weights evaluated.

Keras evaluates with BatchNormalization's moving mean and variance, an exponential
average collected while the weights moved. When the weights move fast (a large λ
shrinks them, the EMA averages them), those statistics belong to other weights, and a
model whose weights are fine scores like chance. PreciseBN (Wu & Johnson, "Rethinking
"Batch" in BatchNorm", 2021) and PyTorch's `torch.optim.swa_utils.update_bn` recompute
them: forward passes in training mode over training images with a cumulative (not
exponential) average of the batch statistics, then evaluate.

Here: over a fixed, seeded subset of the training part (`bn_subset`; never the
validation or test images), without the augmentation layer (a sub-model from the
augmentation's output to the softmax), inside `everything_restored`, which puts every
variable of the model and the optimizer (the weights, the moving statistics, the
augmentation's seed state, the Adam moments, the averages, `iterations`) back exactly,
so that training goes on bit for bit as without the measurement.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

#: The default subset: this fraction of the training set, at most `DEFAULT_CAP` images.
DEFAULT_FRACTION = 0.1
DEFAULT_CAP = 2000


def subset_size(setting: int | None, train_count: int) -> int:
    """Images in the BatchNorm subset: the setting, or the default; at most all.

    Args:
        setting: `bn_subset_size` (None: the smaller of 10 % and 2,000; 0: off).
        train_count: images in the training part.
    """
    if setting is None:
        return min(train_count, DEFAULT_CAP, max(1, round(DEFAULT_FRACTION * train_count)))
    return min(setting, train_count)


def bn_subset(train_count: int, size: int, seed: int) -> np.ndarray:
    """The sorted indices of the subset: the same for every epoch of a run (its seed)."""
    return np.sort(np.random.default_rng([seed, 19]).permutation(train_count)[:size])


def without_augmentation(model: Any) -> Any:
    """The model from its augmentation layer's output on, sharing every layer; or the
    model itself when it has none. Training-mode calls of it never augment."""
    import keras

    from trainer.augment import ShiftFlip

    augmentation = [layer for layer in model.layers if isinstance(layer, ShiftFlip)]
    if not augmentation:
        return model
    return keras.Model(augmentation[0].output, model.output, name=f"{model.name}_unaugmented")


def _copies(variables: list[Any]) -> list[np.ndarray]:
    import keras

    # np.array copies: convert_to_numpy may share the variable's buffer on CPU.
    return [np.array(keras.ops.convert_to_numpy(v), copy=True) for v in variables]


@contextmanager
def everything_restored(model: Any, optimizer: Any) -> Iterator[None]:
    """On leaving the block, every variable of the model and the optimizer holds again
    exactly the value it had on entering (copies, not arithmetic)."""
    variables = list(model.variables) + list(optimizer.variables)
    saved = _copies(variables)
    try:
        yield
    finally:
        for variable, value in zip(variables, saved, strict=True):
            variable.assign(value)


def batch_norm_layers(model: Any) -> list[Any]:
    """The model's BatchNormalization layers."""
    import keras

    return [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]


class StatisticsRecomputer:
    """Sets each BatchNorm's moving mean and variance to the cumulative average of its
    batch statistics over some images in training mode (each batch weighted by its
    size), as `update_bn` does with `momentum=None`.

    With momentum 0 a training-mode call leaves the batch's own statistics in the
    moving variables; they are read after each batch and averaged here. On TensorFlow
    the forward pass is a `tf.function` (traced once per run, with momentum 0: eager
    calls cost more than the rest of the measurement); elsewhere it runs eagerly. Call
    it inside `everything_restored`.

    Args:
        model: the model (with its augmentation layer, which is bypassed).
    """

    def __init__(self, model: Any) -> None:
        import keras

        self.body = without_augmentation(model)
        self.layers = batch_norm_layers(model)
        self._forward = self._statistics_after
        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            spec = tf.TensorSpec([None, *self.body.inputs[0].shape[1:]], self.body.inputs[0].dtype)
            self._forward = tf.function(self._statistics_after, input_signature=[spec])

    def _statistics_after(self, x: Any) -> list[Any]:
        self.body(x, training=True)
        return [v for layer in self.layers for v in (layer.moving_mean.value, layer.moving_variance.value)]

    def __call__(self, x: np.ndarray, batch_size: int) -> None:
        """Recomputes the statistics over the images `x`, `batch_size` at a time."""
        import keras

        momenta = [layer.momentum for layer in self.layers]
        sums = [np.zeros(v.shape) for layer in self.layers for v in (layer.moving_mean, layer.moving_variance)]
        try:
            for layer in self.layers:
                layer.momentum = 0.0
            for start in range(0, len(x), batch_size):
                batch = x[start : start + batch_size]
                for total, value in zip(sums, self._forward(batch), strict=True):
                    total += len(batch) * keras.ops.convert_to_numpy(value).astype(np.float64)
        finally:
            for layer, momentum in zip(self.layers, momenta, strict=True):
                layer.momentum = momentum
        variables = [v for layer in self.layers for v in (layer.moving_mean, layer.moving_variance)]
        for variable, total in zip(variables, sums, strict=True):
            variable.assign((total / len(x)).astype(variable.dtype))
