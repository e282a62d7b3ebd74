"""Train one run as the post does, one epoch at a time, resumable at any epoch.

The loop calls Keras' `fit()` for one epoch at a time on that epoch's permutation of
the training set (`EpochBatches`), validates, reports the epoch, and checkpoints:

    for each remaining epoch:
        fit one epoch  →  evaluate  →  on_epoch(record)  →  checkpoint  →  should_stop?

`on_epoch` comes before the checkpoint, so a kill between the two re-trains at most
that epoch (reported again, which the store upserts) and never loses an epoch's row.
The checkpoint and the outcome are written inside the caller's `fence`, so that a
process that lost its run to another never makes its checkpoint current.
Validation uses the weights as they are during training, as the post's
`fit(validation_data=…)` did; with EMA (and `evaluate_ema`) it runs a second time with
the averaged weights, which are then replaced by the training weights exactly
(`trainer.ema`). When validation is a split of the training set, the test set is
evaluated too (`trainer.validation` holds an epoch's measurements). The conv kernels' norms, effective LR and rotation come from the
weights (`trainer.weight_stats`), the angle per step from samples during the epoch
(`trainer.step_angle`). The BatchNorm-true validation recomputes the statistics on a
subset of the training images and puts every variable back (`trainer.precise_bn`).
With EMA the final (`last`) weights are the averages, as after the post's `fit()`.

TensorFlow is imported inside `train()` only, so `import trainer` stays cheap.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trainer.records import EpochRecord, TrainResult
from trainer.validation import ema_horizon, measure_epoch, member_record

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from sweeps.config import RunConfig


def _non_finite_loss_watcher() -> Any:
    """A callback that stops `fit()` at the first batch whose running loss is NaN or inf.

    None on TensorFlow with an accelerator: Keras runs TensorFlow's batch callbacks on
    the training thread, so reading each batch's loss would make the host wait for the
    device at every step. There the epoch's mean loss is checked instead (a NaN in any
    batch makes it NaN), which stops the run at the end of that epoch.
    """
    import keras

    from trainer.device import accelerator

    if keras.backend.backend() == "tensorflow" and accelerator() is not None:
        return None

    class NonFiniteLoss(keras.callbacks.Callback):
        # Only reads the logs: safe to run off the training thread where the backend
        # allows it (JAX), so it does not stall the device.
        async_safe = True

        def __init__(self) -> None:
            super().__init__()
            self.tripped = False

        def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
            loss = (logs or {}).get("loss")
            if loss is not None and not math.isfinite(float(loss)):
                self.tripped = True
                self.model.stop_training = True

    return NonFiniteLoss()


def build_model(
    config: RunConfig,
    input_shape: tuple[int, int, int],
    num_classes: int,
    steps_per_epoch: int,
    more_ema_momenta: tuple[float, ...] = (),
) -> tuple[Any, Any]:
    """The compiled model (with the augmentation layer) and its built optimizer, as
    `train()` starts a run: also how to load a run's saved weights
    (`model.load_weights(folder / "last.weights.h5")`).

    Args:
        config: the run.
        input_shape: (height, width, channels) of its images.
        num_classes: the classifier's outputs.
        steps_per_epoch: batches per epoch (the schedule is per step).
        more_ema_momenta: one more average per value, kept by the optimizer beside
            Keras' own (the members of a shared training).
    """
    import keras

    from trainer.augment import ShiftFlip
    from trainer.device import resolve_precision
    from trainer.model import build_resnet_v2
    from trainer.optimizer import build_optimizer

    # A fresh graph per run (Keras leaks memory across runs otherwise), then the seed:
    # the same seed gives the same initial weights and augmentation stream.
    keras.backend.clear_session()
    keras.utils.set_random_seed(config.seed)
    policy = resolve_precision(config.precision)
    augmentation = None
    if config.augment and (config.shift > 0 or config.flip):
        augmentation = ShiftFlip(config.shift, config.flip, seed=config.seed, name="shift_flip")
    model = build_resnet_v2(
        config.depth, input_shape, num_classes, l2=config.l2, dtype_policy=policy,
        preprocessing=augmentation,
    )
    optimizer = build_optimizer(config, model, steps_per_epoch, policy, more_ema_momenta)
    model.compile(
        optimizer=optimizer,
        loss="sparse_categorical_crossentropy",
        # The cross-entropy alone: `loss` includes the L2 penalty (`l2`).
        metrics=["accuracy", keras.metrics.SparseCategoricalCrossentropy(name="xent")],
        # XLA where Keras finds it pays: on accelerators, not on TensorFlow's CPU.
        jit_compile="auto",
        auto_scale_loss=False,  # build_optimizer already wrapped it for float16
    )
    return model, optimizer


def _build_metrics(model: Any, x: Any, y: Any) -> None:
    """Creates the compiled metrics' variables now, from one image, eagerly.

    On TensorFlow without a distribution strategy, Keras creates them inside the first
    traced train step, and `tf.function` traces a function that creates variables
    twice: building them first saves one trace of the train step (about a quarter of
    the first epoch of a small run). Other backends build them symbolically before
    the first step already. The metrics are reset at each epoch's start.
    """
    import keras

    if keras.backend.backend() != "tensorflow":
        return
    model.compute_metrics(x, y, model(x, training=False))
    model.reset_metrics()


def _check_shape(input_shape: tuple[int, ...]) -> None:
    """An image shape the ResNet cannot take is the input's fault: one line, no retry."""
    from sweeps.errors import InputError
    from sweeps.resnet import check_input_shape

    try:
        check_input_shape(input_shape)
    except ValueError as error:
        raise InputError(f"image_shape: {error}") from None


#: What `train()` imports on its first call: Keras (its backend), scikit-learn's loaders
#: and the trainer's Keras modules.
HEAVY_MODULES = (
    "keras", "sklearn.datasets", "sklearn.model_selection", "trainer.augment",
    "trainer.checkpoint", "trainer.data", "trainer.device", "trainer.model", "trainer.optimizer",
)


def preload() -> None:
    """Imports what `train()` would import on its first call, so that a process can pay
    for it (seconds: TensorFlow) before it has a run to train."""
    import importlib

    for name in HEAVY_MODULES:
        importlib.import_module(name)


@contextmanager
def _always_write(_end: bool) -> Iterator[bool]:
    yield True


def train(
    config: RunConfig,
    on_epoch: Callable[[EpochRecord], None],
    checkpoint_dir: str | Path,
    *,
    data_dir: str | Path | None = None,
    should_stop: Callable[[], bool] | None = None,
    verbose: bool = False,
    instance: str | None = None,
    fence: Callable[[bool], AbstractContextManager[bool]] | None = None,
    on_phase: Callable[[str], None] | None = None,
    members: Sequence[RunConfig] = (),
    on_member_epoch: Callable[[int, EpochRecord], None] | None = None,
) -> TrainResult:
    """Trains one run, continuing after the last completed epoch in `checkpoint_dir`;
    with `members`, for them too.

    Args:
        config: the run (a `sweeps.config.RunConfig`).
        on_epoch: called once per newly trained epoch with its record, before that
            epoch's checkpoint is written.
        checkpoint_dir: the run's folder; created if missing. A run started again
            with the same folder continues; an ended run returns its result at once.
        data_dir: the dataset's files (CIFAR-10, Fashion-MNIST); None uses Keras'
            loader.
        should_stop: polled after each epoch's checkpoint; true stops the run
            ("stopped"; it can continue later).
        verbose: show Keras' progress bar per epoch.
        instance: the study instance the run belongs to, written into its
            checkpoints; a folder of another instance is refused. None: unbound.
        fence: entered around every write that makes a checkpoint current or ends
            the run on disk, with True for the run's end: it yields whether to write
            (False skips this epoch's checkpoint, e.g. while the epoch's record cannot
            be stored), and raises to stop the run (its writer lost the run to another
            process). None: always write.
        on_phase: told what the run is doing before each slow step: `loading the
            data`, `building the model`, `epoch k/n (compiling)` for the first epoch
            of this process (Keras traces the step then), `epoch k/n` for the others.
        members: runs with the same training (`RunConfig.training_key`) that differ
            only in what they measure (m, `evaluate_ema`, `bn_subset_size`): the
            optimizer keeps one more average per member, and each epoch each member
            gets its own record. The group is checkpointed as one, in this folder.
        on_member_epoch: called with (index into `members`, record) per member and
            epoch, after `on_epoch` and before the checkpoint.

    Returns:
        The outcome, with the Keras, backend and device versions.

    Raises:
        InputError: the data cannot be loaded, its image shape cannot be trained, or
            the folder holds another run or another study instance's run.
    """
    from trainer import checkpoint
    from trainer.batches import EpochBatches
    from trainer.data import load_dataset
    from trainer.device import versions
    from trainer.optimizer import adamw_of, current_learning_rate
    from trainer.precise_bn import StatisticsRecomputer, bn_subset, subset_size
    from trainer.step_angle import StepAngles
    from trainer.weight_stats import kernel_groups, snapshot

    directory = Path(checkpoint_dir)
    directory.mkdir(parents=True, exist_ok=True)
    ended = checkpoint.read_result(directory, config.run_key, instance)
    if ended is not None:
        return ended

    phase = on_phase or (lambda _: None)
    phase("loading the data")
    data = load_dataset(config, data_dir)
    _check_shape(data.input_shape)
    train_count = len(data.x_train)
    steps_per_epoch = math.ceil(train_count / config.batch_size)
    for member in members:
        if member.training_key != config.training_key:
            raise ValueError(f"run {member.run_key} does not share the training of {config.run_key}")
    more = tuple(member.ema_momentum for member in members) if config.use_ema else ()
    phase("building the model")
    model, optimizer = build_model(config, data.input_shape, data.num_classes, steps_per_epoch, more)
    _build_metrics(model, data.x_train[:1], data.y_train[:1])
    saved = checkpoint.load(directory, config.run_key, instance, model=model, optimizer=optimizer)
    state = checkpoint.RunState(config.run_key, instance=instance)
    if saved is None and checkpoint.trained_before(directory):
        # The epochs already reported are trained again and replace their rows.
        log.warning("no intact checkpoint in %s: the run trains again from epoch 1", directory)
    if saved is not None:
        checkpoint.restore(saved, model, optimizer)
        state = saved.state
        if verbose:
            print(f"continuing after epoch {state.epochs_done}", file=sys.stderr)
    run_versions = versions()

    def result(status: str, diverged_at: int | None = None, reason: str | None = None) -> TrainResult:
        return TrainResult(
            status=status, epochs_completed=state.epochs_done, diverged_at=diverged_at,  # type: ignore[arg-type]
            best_val_acc=state.best_val_acc, best_epoch=state.best_epoch,
            versions=run_versions, failure_reason=reason,
        )

    guard = fence or _always_write
    watcher = _non_finite_loss_watcher()
    kernels = kernel_groups(model)
    steps = StepAngles(kernels.scale_invariant, optimizer, config.weight_decay, steps_per_epoch, config.beta_1)
    callbacks = [steps] + ([watcher] if watcher else [])
    bn_size = subset_size(config.bn_subset_size, train_count)
    bn = (bn_subset(train_count, bn_size, config.seed), StatisticsRecomputer(model)) if bn_size else None
    first_epoch = state.epochs_done  # traced and compiled in this process
    for epoch in range(first_epoch, config.epochs):
        phase(f"epoch {epoch + 1}/{config.epochs}" + (" (compiling)" if epoch == first_epoch else ""))
        batches = EpochBatches(data.x_train, data.y_train, config.batch_size, config.seed, epoch)
        before = snapshot(kernels.scale_invariant)
        started = time.perf_counter()
        logs = model.fit(
            batches, epochs=1, verbose=1 if verbose else 0, callbacks=callbacks,
            shuffle=False,  # the order is the batches' own; Keras would shuffle them with `random`
        ).history
        train_seconds = time.perf_counter() - started
        loss, acc, xent = float(logs["loss"][-1]), float(logs["accuracy"][-1]), float(logs["xent"][-1])
        diverged = not math.isfinite(loss) or bool(watcher and watcher.tripped)
        lr = current_learning_rate(optimizer)
        measured = {} if diverged else measure_epoch(config, data, model, optimizer, kernels, lr, before, bn)
        if not diverged:
            measured |= steps.epoch_values()
        record = EpochRecord(
            epoch=epoch + 1, loss=loss, acc=acc, lr=lr, seconds=time.perf_counter() - started,
            images_per_second=train_count / train_seconds, xent=xent,
            ema_horizon_epochs=ema_horizon(config, steps_per_epoch),
            **{"val_loss": math.nan, "val_acc": math.nan, **measured},
        )
        on_epoch(record)
        for index, member in enumerate(members):
            averages = adamw_of(optimizer).more_averages[index] if more else None
            own = member_record(record, member, averages, data, model, optimizer, steps_per_epoch, bn)
            on_member_epoch(index, own)  # type: ignore[misc]

        if diverged:
            state.history.append(record.as_dict())
            ended = result("diverged", epoch + 1, f"diverged at epoch {epoch + 1}")
            with guard(True) as write:
                # The last good weights are the previous epoch's checkpoint.
                if write and (saved := checkpoint.load(directory, config.run_key, instance, model=model, optimizer=optimizer)):
                    checkpoint.restore(saved, model, optimizer)
                    checkpoint.save_weights_atomically(model, directory / checkpoint.LAST)
                if write:
                    checkpoint.write_result(directory, ended, state)
            return ended

        state.history.append(record.as_dict())
        state.epochs_done = epoch + 1
        better = state.best_val_acc is None or record.val_acc > state.best_val_acc
        if better:
            state.best_val_acc, state.best_epoch = record.val_acc, epoch + 1
        with guard(False) as write:
            if write and better:
                checkpoint.save_weights_atomically(model, directory / checkpoint.BEST)
            if write:
                checkpoint.save(directory, model, optimizer, state)
        if should_stop is not None and epoch + 1 < config.epochs and should_stop():
            return result("stopped", reason=f"stopped after epoch {epoch + 1}")

    # With EMA, the weights become the averages, as at the end of the post's fit().
    adamw_of(optimizer).finalize_run(model.trainable_variables)
    ended = result("completed")
    with guard(True) as write:
        if write:
            checkpoint.save_weights_atomically(model, directory / checkpoint.LAST)
            checkpoint.write_result(directory, ended, state)
    return ended
