"""Per-epoch cost of the epoch measurements (issue 11) against an epoch without them.

An epoch without them is what the trainer did before: one `fit()` epoch and one
validation. The additions are a second validation with the EMA weights (copied aside
and back), the test set when validation is a split of the training set, and the conv
kernels' statistics (a snapshot at the epoch's start, norms and angles at its end).
This script trains ResNet20v2 on CIFAR-shaped synthetic data in one process, times
each part of every epoch after a warm-up one, and prints the ratio of the additions to
the plain epoch (target: under 10 % for the post's proportions, 50,000 training to
10,000 validation images, kept here as 5:1).

Issue 19's additions are timed too: the BatchNorm-true validation (`trainer.precise_bn`:
every variable copied aside, the subset's inference-mode loss, the statistics
recomputed over the default subset — 10 % of the training images, at most 2,000 — for
the weights and for the averages, two more validations, everything put back) and the
step-angle sampling during `fit()` (`trainer.step_angle`, the time spent inside its
callback). At the post's 50,000 images the default subset is 2,000, 4 % and not 10 %:
`--subset` sets it (`--images 2500 --subset 100` keeps the post's proportions). The
BatchNorm part is printed split in two: its two validations (each about as dear as the
EMA validation) and the rest (the subset's passes, the copies), which the subset's size
decides.

    python benchmarks/measurement_cost.py                     # about a minute on 2 cores
    python benchmarks/measurement_cost.py --images 2500 --subset 100   # the post's proportions
    python benchmarks/measurement_cost.py --depth 56 --images 1280 --epochs 4

Options: --depth, --images (training; validation and test are a fifth of it each),
--subset (BatchNorm subset; default the trainer's), --batch, --epochs (timed), --backend.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(1, str(REPO))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depth", type=int, default=20, help="ResNet v2 depth 9n+2 (default 20)")
    parser.add_argument("--images", type=int, default=640, help="training images (default 640)")
    parser.add_argument("--subset", type=int, default=None,
                        help="BatchNorm subset images (default: the trainer's, 10%% of --images, at most 2000)")
    parser.add_argument("--batch", type=int, default=64, help="batch size (default 64)")
    parser.add_argument("--epochs", type=int, default=4, help="timed epochs after one warm-up (default 4)")
    parser.add_argument("--backend", default=None, help="KERAS_BACKEND (default: as set, else tensorflow)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.backend:
        os.environ["KERAS_BACKEND"] = args.backend
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    from sweeps.config import RunConfig
    from trainer.batches import EpochBatches
    from trainer.data import Dataset, synthetic_images
    from trainer.ema import averaged_weights
    from trainer.optimizer import current_learning_rate
    from trainer.precise_bn import StatisticsRecomputer, bn_subset, subset_size
    from trainer.step_angle import StepAngles
    from trainer.train import build_model
    from trainer.validation import batch_norm_true, evaluate
    from trainer.weight_stats import kernel_groups, snapshot, weight_stats

    config = RunConfig(
        dataset="synthetic", depth=args.depth, batch_size=args.batch, train_size=args.images,
        validation_size=args.images // 5, precision="float32", learning_rate=8e-4, weight_decay=0.2,
        ema_momentum=0.98, epochs=args.epochs + 1,
    )
    x, y = synthetic_images(args.images, (32, 32, 3), stream=0)
    x_val, y_val = synthetic_images(args.images // 5, (32, 32, 3), stream=1)
    x_test, y_test = synthetic_images(args.images // 5, (32, 32, 3), stream=2)
    data = Dataset("synthetic", x / 255.0, y, x_val / 255.0, y_val, 10, x_test / 255.0, y_test)
    model, optimizer = build_model(config, data.input_shape, 10, -(-args.images // args.batch))
    kernels = kernel_groups(model)
    steps_per_epoch = -(-args.images // args.batch)

    class TimedStepAngles(StepAngles):
        spent = 0.0

        def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
            started = time.perf_counter()
            super().on_train_batch_end(batch, logs)
            self.spent += time.perf_counter() - started

    angles = TimedStepAngles(kernels.scale_invariant, optimizer, config.weight_decay, steps_per_epoch, config.beta_1)
    subset = bn_subset(args.images, subset_size(args.subset, args.images), 0)
    recompute = StatisticsRecomputer(model)
    plain, ema, test, stats, bn, step = [], [], [], [], [], []
    for epoch in range(args.epochs + 1):
        started = time.perf_counter()
        before = snapshot(kernels.scale_invariant)
        snapshot_seconds = time.perf_counter() - started
        started = time.perf_counter()
        angles.spent = 0.0
        model.fit(EpochBatches(data.x_train, data.y_train, args.batch, 0, epoch), epochs=1, verbose=0,
                  shuffle=False, callbacks=[angles])
        evaluate(model, data.x_val, data.y_val, args.batch)
        plain_seconds = time.perf_counter() - started - angles.spent
        step_seconds = angles.spent + _timed(angles.epoch_values)
        started = time.perf_counter()
        with averaged_weights(model, optimizer):
            evaluate(model, data.x_val, data.y_val, args.batch)
        ema_seconds = time.perf_counter() - started
        started = time.perf_counter()
        evaluate(model, data.x_test, data.y_test, args.batch)
        test_seconds = time.perf_counter() - started
        started = time.perf_counter()
        weight_stats(kernels, current_learning_rate(optimizer), before)
        stats_seconds = time.perf_counter() - started + snapshot_seconds
        started = time.perf_counter()
        batch_norm_true(config, data, model, optimizer, subset, recompute)
        bn_seconds = time.perf_counter() - started
        if epoch:  # the first epoch traces and compiles
            bn.append(bn_seconds)
            step.append(step_seconds)
            plain.append(plain_seconds)
            ema.append(ema_seconds)
            test.append(test_seconds)
            stats.append(stats_seconds)

    base = statistics.median(plain)
    parts = {"ema_validation": ema, "weight_stats": stats, "test_set": test}
    print(f"ResNet{args.depth}v2, {args.images} training / {args.images // 5} validation / "
          f"{args.images // 5} test images of 32×32×3, batch {args.batch}, {args.epochs} timed epochs "
          f"(median), backend {os.environ.get('KERAS_BACKEND', 'tensorflow')}")
    print(f"epoch_without_additions_s: {base:.3f}")
    for name, seconds in parts.items():
        print(f"{name}_s: {statistics.median(seconds):.4f}   ratio: {statistics.median(seconds) / base:.3f}")
    default = (statistics.median(ema) + statistics.median(stats)) / base
    split = default + statistics.median(test) / base
    print(f"ratio_default (EMA validation + weight stats; validation = test): {default:.3f}")
    print(f"ratio_with_test_set (validation a split, test evaluated too): {split:.3f}")
    bn_ratio, step_ratio = statistics.median(bn) / base, statistics.median(step) / base
    print(f"batchnorm_true_s: {statistics.median(bn):.4f}   ratio: {bn_ratio:.3f}   "
          f"(subset {len(subset)} images = {len(subset) / args.images:.0%} of the training set)")
    two_validations = 2 * statistics.median(ema) / base
    print(f"  of which two validations (2 × ema_validation): {two_validations:.3f}, "
          f"the subset's passes and the copies: {bn_ratio - two_validations:.3f}")
    print(f"step_angles_s: {statistics.median(step):.4f}   ratio: {step_ratio:.3f}")
    print(f"ratio_issue_19 (BatchNorm-true validation + step angles): {bn_ratio + step_ratio:.3f}")
    print(f"ratio_default_now (issue 11's + issue 19's additions): {default + bn_ratio + step_ratio:.3f}")
    return 0


def _timed(function: object) -> float:
    started = time.perf_counter()
    function()  # type: ignore[operator]
    return time.perf_counter() - started


if __name__ == "__main__":
    raise SystemExit(main())
