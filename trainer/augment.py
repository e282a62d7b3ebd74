"""The post's augmentation on the device: random shifts with edges repeated, and flips.

The post used Keras 2's `ImageDataGenerator(width_shift_range=s, height_shift_range=s,
fill_mode="nearest", horizontal_flip=True)` on the host. This layer does the same in
`keras.ops` inside the compiled train step: per image, a shift drawn uniformly from
[-s·size, s·size] in each direction, resampled bilinearly (the generator's
`interpolation_order=1`) with the edge pixels repeated beyond the border
(`fill_mode="nearest"`), and a horizontal flip with probability 1/2.

Each shift (and the flip) is a resampling matrix per image: output row r takes source
row clip(r - dy) (a one-hot row, or two weights for a fractional shift). Applying it is
two small batched matmuls, which every backend compiles with XLA, unlike
`RandomTranslation`, whose `supports_jit=False` turns XLA off for the whole step. Whole
pixel shifts are exact copies of pixels.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops


def resampling_matrix(offsets: Any, size: int, flip: Any = None) -> Any:
    """Per-image matrices `M[b, out, src]` that shift (and flip) one image axis.

    Args:
        offsets: (batch,) shifts in pixels, positive moves the content towards
            higher indices; fractional values interpolate linearly.
        size: the axis' length.
        flip: optional (batch,) booleans: mirror the axis before shifting.
    """
    out = ops.arange(size, dtype="float32")
    # The source position of each output pixel, clamped: positions beyond the border
    # read the edge pixel, as fill_mode="nearest" does.
    source = ops.clip(ops.subtract(out[None, :], offsets[:, None]), 0.0, size - 1.0)
    if flip is not None:
        source = ops.where(flip[:, None], ops.subtract(size - 1.0, source), source)
    lower = ops.floor(source)
    fraction = ops.subtract(source, lower)
    lower_index = ops.cast(lower, "int32")
    upper_index = ops.minimum(lower_index + 1, size - 1)
    return ops.add(
        ops.multiply(ops.one_hot(lower_index, size, dtype="float32"), (1.0 - fraction)[..., None]),
        ops.multiply(ops.one_hot(upper_index, size, dtype="float32"), fraction[..., None]),
    )


def shift_and_flip(images: Any, dy: Any, dx: Any, flip: Any = None) -> Any:
    """Shifts each image by (dy, dx) pixels with edges repeated, after an optional flip.

    Args:
        images: (batch, height, width, channels) float images.
        dy, dx: (batch,) shifts down and right in pixels (may be fractional).
        flip: optional (batch,) booleans: flip the image horizontally.
    """
    images = ops.cast(images, "float32")
    height, width = images.shape[1], images.shape[2]
    rows = resampling_matrix(dy, height)
    columns = resampling_matrix(dx, width, flip)
    images = ops.einsum("bhk,bkwc->bhwc", rows, images)
    return ops.einsum("bwk,bhkc->bhwc", columns, images)


@keras.saving.register_keras_serializable(package="trainer")
class ShiftFlip(keras.layers.Layer):
    """Random shift and horizontal flip during training; the identity otherwise.

    Only `training=True` calls (the train step of `fit`) augment, so validation and
    prediction never see augmented images. Its random state is a `SeedGenerator`,
    part of the layer's variables and hence of every checkpoint.

    Args:
        shift: the largest shift as a fraction of height and width (the post: 0.07).
        flip: flip half of the images horizontally.
        seed: seed of the augmentation's random stream.
    """

    def __init__(
        self, shift: float = 0.0, flip: bool = False, seed: int | None = None, **kwargs: Any
    ) -> None:
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.shift = float(shift)
        self.flip = bool(flip)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        if not training or (self.shift == 0 and not self.flip):
            return inputs
        height, width = inputs.shape[1], inputs.shape[2]
        batch = ops.shape(inputs)[0]
        dy = dx = ops.zeros((batch,), "float32")
        if self.shift > 0:
            dy = keras.random.uniform(
                (batch,), -self.shift * height, self.shift * height, seed=self.seed_generator
            )
            dx = keras.random.uniform(
                (batch,), -self.shift * width, self.shift * width, seed=self.seed_generator
            )
        flip = None
        if self.flip:
            flip = ops.less(keras.random.uniform((batch,), seed=self.seed_generator), 0.5)
        return ops.cast(shift_and_flip(inputs, dy, dx, flip), self.compute_dtype)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "shift": self.shift, "flip": self.flip, "seed": self.seed}
