"""CIFAR-10 in its official format, read without letting a planted file run code.

The official `cifar-10-python.tar.gz` holds `cifar-10-batches-py/` with five training
batches and one test batch, each a Python-2 pickle of a dict (`b"data"`: a uint8 array
of N×3072 pixels, channel-major; `b"labels"`: a list of ints; `b"filenames"`,
`b"batch_label"`: bytes). Unpickling can call any importable function, so the loader
uses an unpickler that resolves only the three globals numpy needs to rebuild an array
and refuses everything else (`os.system`, `builtins.eval`, …). The archive is read
member by member, never extracted, so its paths cannot escape the folder either.

Without a data folder, Keras' own loader downloads the archive to Keras' cache
(`~/.keras/datasets`) on a connected machine; Keras 3.15 reads it with a restricted
unpickler too.
"""

from __future__ import annotations

import io
import pickle
import tarfile
from pathlib import Path
from typing import IO, Any

import numpy as np

from sweeps.errors import InputError

ARCHIVE = "cifar-10-python.tar.gz"
FOLDER = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
URL = "https://www.cs.toronto.edu/~kriz/cifar.html"

Arrays = tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]

# numpy < 2 pickles arrays with `numpy.core.multiarray._reconstruct`, numpy >= 2 with
# `numpy._core.multiarray._reconstruct`; the official files are of the former kind.
_RECONSTRUCT = np.ndarray(0).__reduce__()[0]
_ALLOWED = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
}


class _BatchUnpickler(pickle.Unpickler):
    """Unpickles dicts, lists, bytes, numbers and numpy arrays; refuses any other global."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refuses to load the global {module}.{name}") from None


def read_batch(stream: IO[bytes], where: str) -> tuple[np.ndarray, np.ndarray]:
    """One batch file as (images N×32×32×3 uint8, labels N int64).

    Args:
        stream: the batch file's bytes.
        where: the file's name in error messages.
    """
    try:
        batch = _BatchUnpickler(stream, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as error:
        raise InputError(f"{where}: not a CIFAR-10 batch ({error})") from None
    data = batch.get(b"data") if isinstance(batch, dict) else None
    labels = batch.get(b"labels") if isinstance(batch, dict) else None
    if (
        not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2
        or data.shape[1] != 3 * 32 * 32 or not isinstance(labels, list)
        or len(labels) != len(data) or not all(isinstance(label, int) for label in labels)
    ):
        raise InputError(
            f"{where}: not a CIFAR-10 batch (expected a dict with b'data', uint8 N×3072, "
            "and b'labels', N ints)"
        )
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), np.asarray(labels, dtype=np.int64)


def _concatenate(batches: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    return np.concatenate([x for x, _ in batches]), np.concatenate([y for _, y in batches])


def read_folder(folder: Path) -> Arrays:
    """The extracted `cifar-10-batches-py/` folder."""
    def read(name: str) -> tuple[np.ndarray, np.ndarray]:
        path = folder / name
        if not path.is_file():
            raise InputError(f"{folder}: {name} is missing (expected the official {FOLDER}/)")
        with path.open("rb") as stream:
            return read_batch(stream, str(path))

    return _concatenate([read(name) for name in TRAIN_BATCHES]), read(TEST_BATCH)


def read_archive(path: Path) -> Arrays:
    """The official `cifar-10-python.tar.gz`, read in place."""
    try:
        with tarfile.open(path, "r:gz") as archive:
            def read(name: str) -> tuple[np.ndarray, np.ndarray]:
                member = f"{FOLDER}/{name}"
                try:
                    stream = archive.extractfile(member)
                except KeyError:
                    stream = None
                if stream is None:
                    raise InputError(f"{path}: {member} is missing (expected the official archive)")
                return read_batch(io.BytesIO(stream.read()), f"{path}:{member}")

            return _concatenate([read(name) for name in TRAIN_BATCHES]), read(TEST_BATCH)
    except (tarfile.TarError, OSError, EOFError) as error:
        raise InputError(f"{path}: not a readable {ARCHIVE} ({error})") from None


def load_cifar10(data_dir: str | Path | None = None) -> Arrays:
    """CIFAR-10 as ((x_train, y_train), (x_test, y_test)), images uint8 N×32×32×3.

    Args:
        data_dir: a folder holding `cifar-10-python.tar.gz` or `cifar-10-batches-py/`
            (or the batches themselves); None downloads through Keras' loader.
    """
    if data_dir is not None:
        folder = Path(data_dir)
        if (folder / FOLDER).is_dir():
            return read_folder(folder / FOLDER)
        if (folder / ARCHIVE).is_file():
            return read_archive(folder / ARCHIVE)
        if (folder / TEST_BATCH).is_file():
            return read_folder(folder)
        raise InputError(
            f"--data-dir {folder}: expected {ARCHIVE} or {FOLDER}/ in it (the official "
            f"CIFAR-10 for Python, from {URL})"
        )
    try:
        import keras

        (x_train, y_train), (x_test, y_test) = keras.datasets.cifar10.load_data()
    except Exception as error:  # noqa: BLE001 - any download failure means the same to the user
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise InputError(
            f"cifar10: no data ({reason}): pass --data-dir FOLDER holding {ARCHIVE} or "
            f"{FOLDER}/ (from {URL}), or run once where the internet can be reached so "
            "that Keras downloads it to ~/.keras/datasets"
        ) from None
    return (x_train, y_train.reshape(-1).astype(np.int64)), (x_test, y_test.reshape(-1).astype(np.int64))
