"""The Keras trainer: one run of a sweep, faithful to the post, on any Keras backend.

`trainer.train(config, on_epoch, checkpoint_dir)` trains a `sweeps.config.RunConfig`.
Importing the package does not import Keras or TensorFlow; `train()` does.

Its public names are below; `sweep_runner` and `results` import only these (`results`
only the epoch fields). They load on first use. The trainer imports `sweeps` and
nothing else of the project.
"""

from __future__ import annotations

from sweeps.lazy import lazy_names

# Imported at once (cheap: no Keras, no numpy), and `train` must be: it is also the
# name of its module, which importing `trainer.train` would otherwise leave here.
from trainer.records import (
    EPOCH_FIELDS,
    OPTIONAL_EPOCH_FIELDS,
    REQUIRED_EPOCH_FIELDS,
    EpochRecord,
    TrainResult,
)
from trainer.train import build_model, preload, train

#: Each public name loaded on first use, and the module that defines it.
_PUBLIC = {
    "EXIT_INTERRUPTED": "trainer.interrupts",
    "Interrupts": "trainer.interrupts",
    "checkpoint_owners": ("trainer.checkpoint", "owners"),
    "train_command": "trainer.cli",
    "model_command": "trainer.summary",
}
__all__ = sorted([
    "EPOCH_FIELDS", "OPTIONAL_EPOCH_FIELDS", "REQUIRED_EPOCH_FIELDS", "EpochRecord", "TrainResult", "build_model", "preload", "train",
    *_PUBLIC,
])
__getattr__, __dir__ = lazy_names(globals(), _PUBLIC)
