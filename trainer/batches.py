"""The training set of one epoch, batch by batch, in that epoch's order.

`fit()` on whole arrays would need the epoch's permuted copy of the training set (and
TensorFlow copies it once more into a tensor): for CIFAR-10 two 614 MB copies per
epoch. A `PyDataset` gathers each batch when it is asked for (64 rows at a time), and
TensorFlow prefetches it on a background thread.
"""

from __future__ import annotations

import math

import keras
import numpy as np

from trainer.data import epoch_order


class EpochBatches(keras.utils.PyDataset):
    """Batches of `(images, labels)` in the permutation of one 0-based epoch.

    Args:
        x, y: the training images and labels.
        batch_size: images per batch; the last batch may be smaller.
        seed: the run's seed.
        epoch: the 0-based epoch whose order to use.
    """

    def __init__(self, x: np.ndarray, y: np.ndarray, batch_size: int, seed: int, epoch: int) -> None:
        super().__init__()
        self.x, self.y, self.batch_size = x, y, batch_size
        self.order = epoch_order(len(x), seed, epoch)

    def __len__(self) -> int:
        return math.ceil(len(self.x) / self.batch_size)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        rows = self.order[index * self.batch_size : (index + 1) * self.batch_size]
        return self.x[rows], self.y[rows]
