"""The Keras trainer: one run of a sweep, faithful to the post, on any Keras backend.

`trainer.train(config, on_epoch, checkpoint_dir)` trains a `sweeps.config.RunConfig`.
Importing the package does not import Keras or TensorFlow; `train()` does.
"""

from trainer.records import EPOCH_FIELDS, OPTIONAL_EPOCH_FIELDS, REQUIRED_EPOCH_FIELDS, EpochRecord, TrainResult
from trainer.train import train

__all__ = ["EPOCH_FIELDS", "OPTIONAL_EPOCH_FIELDS", "REQUIRED_EPOCH_FIELDS", "EpochRecord", "TrainResult", "train"]
