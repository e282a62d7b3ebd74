"""Images/s of the trainer against the same model fed the way the post was.

The post (Keras 2, TensorFlow) augmented on the host: `ImageDataGenerator.flow` shifted
and flipped each image of each batch in numpy/scipy, and `model.fit` ran without XLA.
The trainer augments inside the compiled train step (`keras.ops`, XLA-compatible) and
lets Keras use XLA where it pays. This script trains both on the same synthetic data,
the same ResNet v2 and the same AdamW, each in its own process (so that each peak
memory is one run's), times the epochs after the warm-up ones (tracing, compiling),
and prints both rates and their ratio.

    python benchmarks/trainer_throughput.py                      # CPU default: < 3 min
    python benchmarks/trainer_throughput.py --backend jax --depth 56 --images 8192 \\
        --epochs 2 --precision auto                              # a GPU

Options: --depth, --images, --batch, --epochs (timed), --warmup, --precision,
--backend (tensorflow, jax, torch), --image-size, --repeat (alternate the two runs N
times and report the median: steadier on a shared machine), --json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depth", type=int, default=20, help="ResNet v2 depth 9n+2 (default 20)")
    parser.add_argument("--images", type=int, default=512, help="synthetic training images (default 512)")
    parser.add_argument("--batch", type=int, default=64, help="batch size (default 64)")
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs (default 2)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed first epochs (default 1)")
    parser.add_argument("--precision", default="float32",
                        choices=["auto", "float32", "mixed_float16", "mixed_bfloat16"])
    parser.add_argument("--backend", default=os.environ.get("KERAS_BACKEND", "tensorflow"),
                        choices=["tensorflow", "jax", "torch"])
    parser.add_argument("--image-size", type=int, default=32, help="square RGB images (default 32)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="alternate the two runs this many times, report medians (default 1)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead")
    parser.add_argument("--only", choices=["trainer", "baseline"], help=argparse.SUPPRESS)
    return parser


def _config(args: argparse.Namespace) -> Any:
    from sweeps.config import RunConfig

    return RunConfig(
        dataset="synthetic", depth=args.depth, epochs=args.warmup + args.epochs,
        batch_size=args.batch, image_shape=(args.image_size, args.image_size, 3),
        train_size=args.images, validation_size=args.batch, precision=args.precision,
        shift=0.07, flip=True, learning_rate=8e-4, weight_decay=0.2, ema_momentum=0.98,
    )


def _peaks() -> dict[str, float | None]:
    """This process' peak host memory, and the accelerator's peak where it tells."""
    host_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    device_mb = None
    try:
        import keras

        backend = keras.backend.backend()
        if backend == "jax":
            import jax

            stats = jax.devices()[0].memory_stats() or {}
            if "peak_bytes_in_use" in stats:
                device_mb = stats["peak_bytes_in_use"] / 2**20
        elif backend == "tensorflow":
            import tensorflow as tf

            if tf.config.list_physical_devices("GPU"):
                device_mb = tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20
        elif backend == "torch":
            import torch

            if torch.cuda.is_available():
                device_mb = torch.cuda.max_memory_allocated() / 2**20
    except Exception:  # noqa: BLE001 - a missing statistic is not a failed benchmark
        pass
    return {"peak_host_mb": round(host_mb, 1), "peak_device_mb": device_mb and round(device_mb, 1)}


def run_trainer(args: argparse.Namespace) -> dict[str, Any]:
    """The trainer itself: `trainer.train` on synthetic data; its own per-epoch rates."""
    from trainer import train

    records = []
    with tempfile.TemporaryDirectory() as directory:
        result = train(_config(args), records.append, directory)
    timed = records[args.warmup:]
    seconds = sum(args.images / r.images_per_second for r in timed)
    return {
        "images_per_second": len(timed) * args.images / seconds,
        "epoch_rates": [round(r.images_per_second, 1) for r in records],
        "versions": result.versions, "status": result.status,
    }


def run_baseline(args: argparse.Namespace) -> dict[str, Any]:
    """The post's way: host-side augmentation per batch, `fit` without XLA."""
    import keras
    import numpy as np
    from scipy import ndimage

    from trainer.data import load_dataset
    from trainer.device import resolve_precision, versions
    from trainer.model import build_resnet_v2
    from trainer.optimizer import build_optimizer

    config = _config(args)
    data = load_dataset(config)
    keras.utils.set_random_seed(config.seed)
    policy = resolve_precision(config.precision)

    class HostAugmented(keras.utils.PyDataset):
        """`ImageDataGenerator(width_shift_range, height_shift_range, fill_mode="nearest",
        horizontal_flip=True).flow(x, y, batch_size)` of Keras 2, image by image."""

        def __init__(self) -> None:
            super().__init__()
            self.rng = np.random.default_rng(0)
            self.order = self.rng.permutation(len(data.x_train))

        def __len__(self) -> int:
            return -(-len(data.x_train) // config.batch_size)

        def _transform(self, image: np.ndarray) -> np.ndarray:
            # Keras 2's get_random_transform + apply_affine_transform (order 1, per channel).
            height, width = image.shape[:2]
            tx = self.rng.uniform(-config.shift, config.shift) * height
            ty = self.rng.uniform(-config.shift, config.shift) * width
            matrix = np.array([[1, 0, tx], [0, 1, ty], [0, 0, 1]], dtype=np.float64)
            x, y = height / 2 + 0.5, width / 2 + 0.5
            offset = np.array([[1, 0, x], [0, 1, y], [0, 0, 1]])
            reset = np.array([[1, 0, -x], [0, 1, -y], [0, 0, 1]])
            matrix = offset @ matrix @ reset
            channels = [
                ndimage.affine_transform(channel, matrix[:2, :2], matrix[:2, 2], order=1,
                                         mode="nearest", cval=0.0)
                for channel in np.rollaxis(image, 2, 0)
            ]
            image = np.stack(channels, axis=2)
            if self.rng.random() < 0.5:
                image = image[:, ::-1]
            return image

        def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
            rows = self.order[index * config.batch_size:(index + 1) * config.batch_size]
            batch = np.zeros((len(rows), *data.input_shape), dtype=np.float32)
            for i, row in enumerate(rows):
                batch[i] = self._transform(data.x_train[row])
            return batch, data.y_train[rows]

        def on_epoch_end(self) -> None:
            self.order = self.rng.permutation(len(data.x_train))

    class EpochTimer(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.seconds: list[float] = []

        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            self.seconds.append(time.perf_counter() - self.started)

    model = build_resnet_v2(config.depth, data.input_shape, data.num_classes, dtype_policy=policy)
    steps = -(-len(data.x_train) // config.batch_size)
    model.compile(
        optimizer=build_optimizer(config, model, steps, policy),
        loss="sparse_categorical_crossentropy", metrics=["accuracy"],
        # The post's TensorFlow graph without XLA. JAX has no compiled mode without XLA
        # (jit_compile=False there is op-by-op eager execution, which would flatter the
        # trainer), so on JAX the baseline keeps jit and differs only in its feeding.
        jit_compile=keras.backend.backend() == "jax", auto_scale_loss=False,
    )
    timer = EpochTimer()
    model.fit(HostAugmented(), epochs=config.epochs, verbose=0, callbacks=[timer])
    timed = timer.seconds[args.warmup:]
    return {
        "images_per_second": len(timed) * args.images / sum(timed),
        "epoch_rates": [round(args.images / s, 1) for s in timer.seconds],
        "versions": versions(), "status": "completed",
    }


def _child(args: argparse.Namespace, which: str) -> dict[str, Any]:
    command = [sys.executable, __file__, "--only", which] + [
        f"--{key.replace('_', '-')}={value}" for key, value in vars(args).items()
        if key not in ("only", "json", "repeat")
    ]
    env = {**os.environ, "KERAS_BACKEND": args.backend, "TF_CPP_MIN_LOG_LEVEL": "2"}
    started = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.stderr.write(done.stderr[-4000:])
        raise SystemExit(f"the {which} run failed (exit {done.returncode})")
    measured = json.loads(done.stdout.strip().splitlines()[-1])
    measured["process_seconds"] = round(time.perf_counter() - started, 1)
    return measured


def _median_run(measured: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median rate; all rates and the highest peaks alongside."""
    ordered = sorted(measured, key=lambda m: m["images_per_second"])
    median = dict(ordered[(len(ordered) - 1) // 2])
    median["all_rates"] = [round(m["images_per_second"], 1) for m in measured]
    median["peak_host_mb"] = max(m["peak_host_mb"] for m in measured)
    return median


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.only:
        run = run_trainer if args.only == "trainer" else run_baseline
        measured = run(args)
        measured.update(_peaks())
        print(json.dumps(measured))
        return 0

    # Alternating the runs spreads a busy neighbour's load over both.
    runs: dict[str, list[dict[str, Any]]] = {"trainer": [], "baseline": []}
    for _ in range(args.repeat):
        for which in runs:
            runs[which].append(_child(args, which))
    trainer, baseline = (_median_run(runs[which]) for which in ("trainer", "baseline"))
    ratio = trainer["images_per_second"] / baseline["images_per_second"]
    if args.json:
        print(json.dumps({"settings": vars(args), "trainer": trainer, "baseline": baseline,
                          "ratio": ratio}, indent=1))
        return 0
    versions = trainer["versions"]
    print(
        f"ResNet{args.depth}v2, {args.images} synthetic {args.image_size}x{args.image_size}x3 "
        f"images, batch {args.batch}, {args.precision}, {args.epochs} timed epochs after "
        f"{args.warmup} warm-up; keras {versions['keras']}, {versions['backend']} "
        f"{versions['backend_version']}, {versions['device']}"
    )
    compiled = "jit" if args.backend == "jax" else "no XLA"
    for name, measured in (("trainer", trainer), (f"baseline (host aug, {compiled})", baseline)):
        device = measured["peak_device_mb"]
        print(
            f"  {name:<28} {measured['images_per_second']:8.1f} images/s   "
            f"peak host memory {measured['peak_host_mb']:.0f} MB"
            + (f", device {device:.0f} MB" if device is not None else "")
            + f"   (epochs {measured['epoch_rates']}, {measured['process_seconds']} s"
            + (f", runs {measured['all_rates']})" if args.repeat > 1 else ")")
        )
    print(f"  ratio trainer / baseline: {ratio:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
