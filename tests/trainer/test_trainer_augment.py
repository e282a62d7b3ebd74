"""The shift and the flip move pixels as specified, and never touch validation data."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.backend


def _images(count: int = 2, height: int = 6, width: int = 8, channels: int = 2) -> np.ndarray:
    return np.arange(count * height * width * channels, dtype="float32").reshape(
        count, height, width, channels
    )


def _apply(images, dy, dx, flip=None) -> np.ndarray:
    import keras

    from trainer.augment import shift_and_flip

    args = [np.asarray(dy, "float32"), np.asarray(dx, "float32")]
    if flip is not None:
        args.append(np.asarray(flip))
    return keras.ops.convert_to_numpy(shift_and_flip(images, *args))


def _nearest_shift(image: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """The reference: out[r, c] = in[clip(r - dy), clip(c - dx)] (fill_mode="nearest")."""
    height, width = image.shape[:2]
    rows = np.clip(np.arange(height) - dy, 0, height - 1)
    columns = np.clip(np.arange(width) - dx, 0, width - 1)
    return image[rows][:, columns]


def test_whole_pixel_shifts_copy_pixels_and_repeat_edges() -> None:
    images = _images()
    shifted = _apply(images, [2, -1], [-3, 1])
    np.testing.assert_array_equal(shifted[0], _nearest_shift(images[0], 2, -3))
    np.testing.assert_array_equal(shifted[1], _nearest_shift(images[1], -1, 1))
    # Shifted down by 2: the top rows repeat the first row; the rest moved.
    np.testing.assert_array_equal(shifted[0, 0], shifted[0, 2])
    np.testing.assert_array_equal(shifted[0, 2:, :-3], images[0, :-2, 3:])  # down 2, left 3


def test_zero_shift_is_the_identity() -> None:
    images = _images()
    np.testing.assert_array_equal(_apply(images, [0, 0], [0, 0]), images)


def test_flip_mirrors_columns_only_where_asked() -> None:
    images = _images()
    flipped = _apply(images, [0, 0], [0, 0], [True, False])
    np.testing.assert_array_equal(flipped[0], images[0, :, ::-1])
    np.testing.assert_array_equal(flipped[1], images[1])
    # Flip, then shift right by one: the leftmost column repeats.
    both = _apply(images, [0, 0], [1, 0], [True, False])
    np.testing.assert_array_equal(both[0], _nearest_shift(images[0, :, ::-1], 0, 1))


def test_fractional_shift_interpolates_linearly() -> None:
    images = _images(count=1)
    half = _apply(images, [0.0], [0.5])
    expected = 0.5 * (_nearest_shift(images[0], 0, 0) + _nearest_shift(images[0], 0, 1))
    np.testing.assert_allclose(half[0], expected, rtol=1e-6)


def test_random_layer_shifts_within_range_and_is_seeded() -> None:
    import keras

    from trainer.augment import ShiftFlip

    images = np.random.default_rng(0).random((64, 16, 16, 3)).astype("float32")
    first = keras.ops.convert_to_numpy(ShiftFlip(0.25, True, seed=3)(images, training=True))
    again = keras.ops.convert_to_numpy(ShiftFlip(0.25, True, seed=3)(images, training=True))
    other = keras.ops.convert_to_numpy(ShiftFlip(0.25, True, seed=4)(images, training=True))
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    assert not np.array_equal(first, images)
    # Interpolating between pixels of one image never leaves its value range.
    assert first.min() >= images.min() - 1e-6 and first.max() <= images.max() + 1e-6


@pytest.mark.filterwarnings("ignore:The model does not have any trainable weights")
def test_validation_and_inference_are_never_augmented() -> None:
    import keras

    from trainer.augment import ShiftFlip

    images = np.random.default_rng(1).random((32, 8, 8, 1)).astype("float32")
    layer = ShiftFlip(0.5, True, seed=0)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(images)), images)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(images, training=False)), images)

    # In a model: evaluate() (the trainer's validation) and predict() see the images
    # as they are, fit() sees them augmented.
    model = keras.Sequential([keras.Input((8, 8, 1)), layer])
    model.compile(loss="mse", jit_compile="auto")
    assert model.evaluate(images, images, batch_size=8, verbose=0) == 0.0
    np.testing.assert_array_equal(model.predict(images, batch_size=8, verbose=0), images)

    model.compile(loss="mse", optimizer="sgd", jit_compile="auto")
    history = model.fit(images, images, batch_size=8, epochs=1, verbose=0).history
    assert history["loss"][0] > 0.0  # fit() trains on shifted and flipped images
    assert model.evaluate(images, images, batch_size=8, verbose=0) == 0.0


def test_augmentation_keeps_xla_on() -> None:
    """RandomTranslation's supports_jit=False would switch XLA off for the whole step."""
    from trainer.augment import ShiftFlip
    from trainer.model import build_resnet_v2

    model = build_resnet_v2(11, (16, 16, 3), preprocessing=ShiftFlip(0.1, True, seed=0))
    # Keras keeps XLA asked for only when every layer, nested ones too, supports it.
    model.compile(loss="sparse_categorical_crossentropy", optimizer="sgd", jit_compile=True)
    assert model.jit_compile is True
