"""Training and validation arrays for a run, prepared as the post prepares CIFAR-10.

Loading gives uint8-range images per dataset (CIFAR-10, Fashion-MNIST, scikit-learn's
digits, or synthetic); then, in this order:

1. validation: the test split, a seeded stratified fraction of the training set
   (scikit-learn's `train_test_split`), or Keras' tail split (the last fraction of the
   training arrays before any shuffling, as `validation_split`); when validation is a
   split of the training set, the test split stays beside it as the test set (the
   post's runs 18–20 report validation and test accuracy);
2. subsets: the first `train_size` / `validation_size` images after a seeded shuffle
   (`validation_size` caps the test set too);
3. scaling to [0, 1], and with `subtract_pixel_mean` the training set's per-pixel mean
   image subtracted from every set (Atienza's example).

The data order of each epoch is a permutation drawn from (seed, epoch), so a resumed
run sees the same order as an uninterrupted one without saving any RNG state.
"""

from __future__ import annotations

import gzip
import math
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sweeps.errors import InputError

FASHION_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)
DEBIAN_FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
SYNTHETIC_TRAIN, SYNTHETIC_TEST = 1000, 200
DIGITS_TEST_FRACTION = 0.2
NUM_CLASSES = 10  # all four datasets

Split = tuple[np.ndarray, np.ndarray]


@dataclass
class Dataset:
    """A run's arrays: float32 images N×H×W×C, int labels.

    Args:
        name: the dataset's name.
        x_train, y_train: training images and labels.
        x_val, y_val: validation images and labels.
        num_classes: number of classes.
        x_test, y_test: the test set when validation is a split of the training set,
            else None (the validation set is the test set).
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    num_classes: int
    x_test: np.ndarray | None = None
    y_test: np.ndarray | None = None

    @property
    def input_shape(self) -> tuple[int, int, int]:
        height, width, channels = self.x_train.shape[1:]
        return int(height), int(width), int(channels)


def epoch_order(size: int, seed: int, epoch: int) -> np.ndarray:
    """The permutation of the training set for a 0-based epoch of a run."""
    return np.random.default_rng([seed, epoch]).permutation(size)


# ---------------------------------------------------------------------------- loading


def _read_idx(path: Path) -> np.ndarray:
    """An idx file (gzip-compressed), as MNIST and Fashion-MNIST ship."""
    try:
        with gzip.open(path, "rb") as stream:
            raw = stream.read()
        zero, dtype_code, ndim = struct.unpack(">HBB", raw[:4])
        if zero != 0 or dtype_code != 0x08:
            raise ValueError("not an unsigned-byte idx file")
        shape = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
        return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(shape)
    except (OSError, EOFError, ValueError, struct.error) as error:
        raise InputError(f"{path}: not a gzip idx file ({error})") from None


def _load_fashion_mnist(data_dir: str | Path | None) -> tuple[Split, Split]:
    folder = Path(data_dir) if data_dir is not None else DEBIAN_FASHION_DIR
    if data_dir is not None or folder.is_dir():
        missing = [name for name in FASHION_FILES if not (folder / name).is_file()]
        if missing:
            raise InputError(
                f"--data-dir {folder}: expected the four Fashion-MNIST idx files "
                f"{', '.join(FASHION_FILES)}; missing {', '.join(missing)}"
            )
        x_train, y_train, x_test, y_test = (_read_idx(folder / name) for name in FASHION_FILES)
    else:
        try:
            import keras

            (x_train, y_train), (x_test, y_test) = keras.datasets.fashion_mnist.load_data()
        except Exception as error:  # noqa: BLE001 - any download failure means the same
            reason = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise InputError(
                f"fashion_mnist: no data ({reason}): pass --data-dir FOLDER holding "
                f"{', '.join(FASHION_FILES)} (Debian's dataset-fashion-mnist installs them in "
                f"{DEBIAN_FASHION_DIR}), or run where Keras can download them"
            ) from None
    return (x_train[..., None], y_train), (x_test[..., None], y_test)


def _load_digits() -> tuple[Split, Split]:
    """scikit-learn's 8×8 digits, upsampled to 16×16 (4 divides it) on the 0–255 scale."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = np.kron(digits.images, np.ones((2, 2))) * (255.0 / 16.0)
    # A fixed seed: the "test" set is the same for every run, whatever its seed.
    x_train, x_test, y_train, y_test = train_test_split(
        images[..., None], digits.target, test_size=DIGITS_TEST_FRACTION,
        stratify=digits.target, random_state=0,
    )
    return (x_train, y_train), (x_test, y_test)


def synthetic_images(
    size: int, image_shape: tuple[int, int, int], *, stream: int, num_classes: int = NUM_CLASSES
) -> Split:
    """Deterministic, learnable images: a blocky class pattern, brightness and noise.

    Args:
        size: number of images.
        image_shape: (height, width, channels).
        stream: which sample stream (0 train, 1 test); the class patterns are shared.
        num_classes: number of classes.
    """
    height, width, channels = image_shape
    patterns_rng = np.random.default_rng([1234, height, width, channels])
    coarse = patterns_rng.random((num_classes, max(1, height // 4), max(1, width // 4), channels))
    # Blocks of 4×4 pixels: a few pixels of shift keep the class recognizable.
    patterns = np.kron(coarse, np.ones((1, 4, 4, 1)))[:, :height, :width, :]
    patterns = np.pad(
        patterns, ((0, 0), (0, height - patterns.shape[1]), (0, width - patterns.shape[2]), (0, 0)),
        mode="edge",
    )
    rng = np.random.default_rng([4321, stream])
    labels = rng.integers(0, num_classes, size)
    brightness = rng.uniform(0.6, 1.0, (size, 1, 1, 1))
    noise = rng.normal(0.0, 0.15, (size, height, width, channels))
    images = np.clip(patterns[labels] * brightness + noise, 0.0, 1.0) * 255.0
    return images.astype(np.float32), labels


def _load_raw(config: Any, data_dir: str | Path | None) -> tuple[Split, Split]:
    """((x_train, y_train), (x_test, y_test)) on the 0–255 scale."""
    if config.dataset == "cifar10":
        from trainer.cifar10 import load_cifar10

        return load_cifar10(data_dir)
    if config.dataset == "fashion_mnist":
        return _load_fashion_mnist(data_dir)
    if config.dataset == "digits":
        return _load_digits()
    if config.dataset == "synthetic":
        train = synthetic_images(config.train_size or SYNTHETIC_TRAIN, config.image_shape, stream=0)
        test = synthetic_images(config.validation_size or SYNTHETIC_TEST, config.image_shape, stream=1)
        return train, test
    raise InputError(f"dataset: unknown {config.dataset!r}")


# ---------------------------------------------------------------------------- preparing


def split_validation(train: Split, test: Split, validation: str, seed: int) -> tuple[Split, Split]:
    """(train, validation) for `test`, `stratified:F` or `split:F`."""
    if validation == "test":
        return train, test
    kind, fraction_text = validation.split(":")
    fraction = float(fraction_text)
    x, y = train
    if kind == "stratified":
        from sklearn.model_selection import train_test_split

        x_train, x_val, y_train, y_val = train_test_split(
            x, y, test_size=fraction, stratify=y, random_state=seed
        )
        return (x_train, y_train), (x_val, y_val)
    # Keras' validation_split: the last fraction, before any shuffling, not stratified.
    split_at = math.floor(len(x) * (1.0 - fraction))
    return (x[:split_at], y[:split_at]), (x[split_at:], y[split_at:])


def _subset(split: Split, size: int | None, rng: np.random.Generator) -> Split:
    x, y = split
    if size is None or size >= len(x):
        return x, y
    keep = np.sort(rng.permutation(len(x))[:size])
    return x[keep], y[keep]


def load_dataset(config: Any, data_dir: str | Path | None = None) -> Dataset:
    """The run's training and validation arrays, prepared as the post's.

    Args:
        config: a `sweeps.config.RunConfig`.
        data_dir: a folder with the dataset's files (CIFAR-10, Fashion-MNIST), else
            Keras' loader (download to Keras' cache).

    Raises:
        InputError: the data cannot be had, or a file is not what it should be.
    """
    train, test = _load_raw(config, data_dir)
    train, val = split_validation(train, test, config.validation, config.seed)
    rng = np.random.default_rng([config.seed, 7])
    train = _subset(train, config.train_size, rng)
    val = _subset(val, config.validation_size, rng)
    # After the other subsets, so that they stay what they were before the test set.
    kept_test = None if config.validation == "test" else _subset(test, config.validation_size, rng)

    x_train = np.asarray(train[0], np.float32) / np.float32(255.0)
    images = [np.asarray(split[0], np.float32) / np.float32(255.0) for split in (val, kept_test) if split]
    if config.subtract_pixel_mean:
        mean = x_train.mean(axis=0, dtype=np.float64).astype(np.float32)
        x_train -= mean
        for x in images:
            x -= mean
    labels = [np.asarray(split[1], np.int32).reshape(-1) for split in (train, val, kept_test) if split]
    return Dataset(
        config.dataset, x_train, labels[0], images[0], labels[1], NUM_CLASSES,
        x_test=images[1] if kept_test else None, y_test=labels[2] if kept_test else None,
    )
