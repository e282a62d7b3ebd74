"""Datasets and the post's preprocessing; CIFAR-10 and Fashion-MNIST files."""

from __future__ import annotations

import gzip
import io
import os
import pickle
import struct
import tarfile
from pathlib import Path

import numpy as np
import pytest

from sweeps.config import RunConfig
from sweeps.errors import InputError

pytestmark = pytest.mark.backend


# ----------------------------------------------------------------- splits and preprocessing


def test_digits_upsampled_scaled_and_stratified_hold_out() -> None:
    from trainer.data import load_dataset

    data = load_dataset(RunConfig(dataset="digits", subtract_pixel_mean=False, seed=5))
    assert data.x_train.shape == (1437, 16, 16, 1) and data.x_val.shape == (360, 16, 16, 1)
    assert data.x_train.dtype == np.float32 and data.input_shape == (16, 16, 1)
    assert data.x_train.min() == 0.0 and data.x_train.max() == 1.0
    assert data.num_classes == 10
    # Each 8×8 pixel became a 2×2 block.
    np.testing.assert_array_equal(data.x_train[:, ::2, ::2], data.x_train[:, 1::2, 1::2])
    # The hold-out is stratified, and the same for every run seed.
    counts = np.bincount(data.y_val, minlength=10)
    assert counts.min() >= 35 and counts.max() <= 37
    other = load_dataset(RunConfig(dataset="digits", subtract_pixel_mean=False, seed=6))
    np.testing.assert_array_equal(data.x_val, other.x_val)


def test_subtract_pixel_mean_uses_the_training_mean() -> None:
    from trainer.data import load_dataset

    raw = load_dataset(RunConfig(dataset="digits", subtract_pixel_mean=False))
    centred = load_dataset(RunConfig(dataset="digits", subtract_pixel_mean=True))
    mean = raw.x_train.mean(axis=0)
    np.testing.assert_allclose(centred.x_train.mean(axis=0), 0.0, atol=1e-6)
    np.testing.assert_allclose(centred.x_val, raw.x_val - mean, atol=1e-6)


def test_validation_splits() -> None:
    from trainer.data import split_validation

    x = np.arange(100)[:, None]
    y = np.arange(100) % 4
    test = (x[:5], y[:5])
    assert split_validation((x, y), test, "test", 0)[1][0] is test[0]
    (x_train, _), (x_val, y_val) = split_validation((x, y), test, "split:0.14", 0)
    # Keras' validation_split: the last 14 %, in order, before any shuffling.
    np.testing.assert_array_equal(x_val[:, 0], np.arange(86, 100))
    np.testing.assert_array_equal(x_train[:, 0], np.arange(86))
    (x_train, _), (x_val, y_val) = split_validation((x, y), test, "stratified:0.2", 3)
    assert len(x_val) == 20 and np.bincount(y_val).tolist() == [5, 5, 5, 5]
    assert sorted(np.concatenate([x_train, x_val])[:, 0]) == list(range(100))
    again = split_validation((x, y), test, "stratified:0.2", 3)[1][0]
    other = split_validation((x, y), test, "stratified:0.2", 4)[1][0]
    np.testing.assert_array_equal(x_val, again)
    assert not np.array_equal(x_val, other)


def test_subsets_and_synthetic_data() -> None:
    from trainer.data import epoch_order, load_dataset

    config = RunConfig(dataset="synthetic", image_shape=(12, 20, 2), train_size=50,
                       validation_size=30, validation="stratified:0.2")
    data = load_dataset(config)
    assert data.x_train.shape == (40, 12, 20, 2) and data.x_val.shape == (10, 12, 20, 2)
    again = load_dataset(config)
    np.testing.assert_array_equal(data.x_train, again.x_train)
    digits = load_dataset(RunConfig(dataset="digits", train_size=100, validation_size=40))
    assert len(digits.x_train) == 100 and len(digits.x_val) == 40
    assert sorted(epoch_order(10, 0, 1)) == list(range(10))
    np.testing.assert_array_equal(epoch_order(10, 0, 1), epoch_order(10, 0, 1))
    assert not np.array_equal(epoch_order(50, 0, 1), epoch_order(50, 0, 2))


# ----------------------------------------------------------------- Fashion-MNIST


def _write_idx(path: Path, array: np.ndarray) -> None:
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as stream:
        stream.write(header + array.astype(np.uint8).tobytes())


def test_fashion_mnist_from_idx_files(tmp_path: Path) -> None:
    from trainer.data import load_dataset

    rng = np.random.default_rng(0)
    train_images, test_images = rng.integers(0, 256, (30, 28, 28)), rng.integers(0, 256, (10, 28, 28))
    _write_idx(tmp_path / "train-images-idx3-ubyte.gz", train_images)
    _write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.arange(30) % 10)
    _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", test_images)
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.arange(10))
    data = load_dataset(RunConfig(dataset="fashion_mnist", subtract_pixel_mean=False), tmp_path)
    assert data.x_train.shape == (30, 28, 28, 1) and data.input_shape == (28, 28, 1)
    np.testing.assert_allclose(data.x_val[..., 0] * 255, test_images, atol=1e-4)
    np.testing.assert_array_equal(data.y_val, np.arange(10))


def test_fashion_mnist_folder_without_files(tmp_path: Path) -> None:
    from trainer.data import load_dataset

    with pytest.raises(InputError, match=f"--data-dir {tmp_path}: expected the four Fashion-MNIST"):
        load_dataset(RunConfig(dataset="fashion_mnist"), tmp_path)


# ----------------------------------------------------------------- CIFAR-10


def _batch_pickle(images: np.ndarray, labels: list[int]) -> bytes:
    """A batch as the official files hold it: a dict with bytes keys, numpy <2 globals."""
    batch = {
        b"batch_label": b"training batch 1 of 5",
        b"labels": labels,
        b"data": images.transpose(0, 3, 1, 2).reshape(len(images), -1).astype(np.uint8),
        b"filenames": [f"image_{i}.png".encode() for i in range(len(images))],
    }
    # Protocol 3 writes globals as text lines: spell them as the official Python 2 files do.
    raw = pickle.dumps(batch, protocol=3)
    return raw.replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n")


def _cifar_batches(per_batch: int = 4) -> dict[str, tuple[np.ndarray, list[int]]]:
    rng = np.random.default_rng(0)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    return {
        name: (rng.integers(0, 256, (per_batch, 32, 32, 3)).astype(np.uint8),
               [int(v) for v in rng.integers(0, 10, per_batch)])
        for name in names
    }


def _write_archive(path: Path, files: dict[str, bytes]) -> None:
    with tarfile.open(path, "w:gz") as archive:
        for name, content in files.items():
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))


def test_cifar10_official_archive_and_folder(tmp_path: Path) -> None:
    from trainer.cifar10 import load_cifar10
    from trainer.data import load_dataset

    batches = _cifar_batches()
    files = {name: _batch_pickle(*batch) for name, batch in batches.items()}
    files["batches.meta"] = pickle.dumps({b"label_names": [b"airplane"]}, protocol=3)
    _write_archive(tmp_path / "cifar-10-python.tar.gz", files)
    (x_train, y_train), (x_test, y_test) = load_cifar10(tmp_path)
    assert x_train.shape == (20, 32, 32, 3) and x_train.dtype == np.uint8
    assert y_train.tolist() == [label for i in range(1, 6) for label in batches[f"data_batch_{i}"][1]]
    np.testing.assert_array_equal(x_train[:4], batches["data_batch_1"][0])
    np.testing.assert_array_equal(x_train[16:], batches["data_batch_5"][0])
    np.testing.assert_array_equal(y_test, batches["test_batch"][1])
    np.testing.assert_array_equal(x_test, batches["test_batch"][0])

    folder = tmp_path / "extracted" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name, content in files.items():
        (folder / name).write_bytes(content)
    (x_folder, _), _ = load_cifar10(tmp_path / "extracted")
    np.testing.assert_array_equal(x_folder, x_train)

    data = load_dataset(
        RunConfig(dataset="cifar10", subtract_pixel_mean=False, validation="split:0.2"), tmp_path
    )
    assert data.x_train.shape == (16, 32, 32, 3) and data.x_val.shape == (4, 32, 32, 3)
    np.testing.assert_allclose(data.x_val * 255, batches["data_batch_5"][0], atol=1e-3)


class _Planted:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # what a malicious batch file would do
        return (os.system, (f"touch {self.marker}",))


def test_cifar10_refuses_a_planted_pickle(tmp_path: Path) -> None:
    from trainer.cifar10 import load_cifar10

    marker = tmp_path / "pwned"
    batches = _cifar_batches()
    files = {name: _batch_pickle(*batch) for name, batch in batches.items()}
    files["data_batch_3"] = pickle.dumps({b"data": _Planted(marker), b"labels": []}, protocol=3)
    _write_archive(tmp_path / "cifar-10-python.tar.gz", files)
    refused = r"data_batch_3: not a CIFAR-10 batch \(refuses to load the global (os|posix)\.system\)"
    with pytest.raises(InputError, match=refused):
        load_cifar10(tmp_path)
    assert not marker.exists()


def test_cifar10_folder_without_data(tmp_path: Path) -> None:
    from trainer.cifar10 import load_cifar10

    with pytest.raises(InputError, match=r"expected cifar-10-python\.tar\.gz or cifar-10-batches-py/"):
        load_cifar10(tmp_path)


def test_cifar10_without_folder_and_download_says_both_ways(monkeypatch: pytest.MonkeyPatch) -> None:
    import keras

    from trainer.cifar10 import load_cifar10

    def offline():
        raise Exception("URL fetch failure on https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz")

    monkeypatch.setattr(keras.datasets.cifar10, "load_data", offline)
    with pytest.raises(InputError) as caught:
        load_cifar10(None)
    message = str(caught.value)
    assert "\n" not in message
    assert "--data-dir" in message and "~/.keras/datasets" in message and "URL fetch failure" in message
