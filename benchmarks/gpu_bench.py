"""The GPU figures: ResNet56v2 on CIFAR-10-shaped synthetic data, on one CUDA GPU.

Run by `benchmarks/gpu.sh` on a machine without TensorFlow (Keras on JAX). Measures,
each in fresh processes of `trainer_throughput.py`:

1. the trainer in float32, mixed_float16 and mixed_bfloat16 against the host-fed
   baseline (numpy augmentation per batch, `fit` without XLA): images/s and the ratio;
2. 1, 2, 4 and 8 trials at once on the one GPU: total images/s, device memory each;
3. one full epoch of 50,000 images: its wall time, validation of 10,000 included;
4. from these, the projected wall time of the post's Table 1 (14 runs × 60 epochs).

    python benchmarks/gpu_bench.py --out DIR [--quick]

Writes DIR/gpu.json and DIR/gpu.md, and prints the Markdown.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
THROUGHPUT = HERE / "trainer_throughput.py"
TABLE1_RUNS, TABLE1_EPOCHS = 14, 60


def _throughput(options: list[str], *, only: str | None = None, env: dict | None = None) -> subprocess.Popen:
    command = [sys.executable, str(THROUGHPUT), *options, "--json"]
    if only:
        command += ["--only", only]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})})


def _result(process: subprocess.Popen) -> dict[str, Any]:
    out, err = process.communicate()
    if process.returncode != 0:
        sys.stderr.write(err[-3000:])
        raise SystemExit(f"a throughput run failed (exit {process.returncode})")
    lines = out.strip().splitlines()
    # `--only` prints one line; the paired run prints an indented JSON object.
    return json.loads(lines[-1]) if lines[-1].startswith("{") and lines[-1].endswith("}") else json.loads(out)


def precisions(common: list[str], names: list[str]) -> list[dict[str, Any]]:
    rows = []
    for precision in names:
        started = time.monotonic()
        paired = _result(_throughput([*common, "--precision", precision]))
        rows.append({
            "precision": precision,
            "trainer": round(paired["trainer"]["images_per_second"], 1),
            "baseline": round(paired["baseline"]["images_per_second"], 1),
            "ratio": round(paired["ratio"], 2),
            "device_mb": paired["trainer"].get("peak_device_mb"),
            "seconds": round(time.monotonic() - started),
        })
        print(rows[-1], flush=True)
    return rows


def concurrent(common: list[str], precision: str, counts: list[int]) -> list[dict[str, Any]]:
    # Several processes on one card: each takes memory as it needs, not 75 % of it.
    env = {"XLA_PYTHON_CLIENT_PREALLOCATE": "false", "TF_FORCE_GPU_ALLOW_GROWTH": "true"}
    rows = []
    for count in counts:
        processes = [
            _throughput([*common, "--precision", precision], only="trainer", env=env)
            for _ in range(count)
        ]
        measured = [_result(p) for p in processes]
        rows.append({
            "trials": count,
            "total_images_per_second": round(sum(m["images_per_second"] for m in measured), 1),
            "each": [round(m["images_per_second"], 1) for m in measured],
            "device_mb_each": [m.get("peak_device_mb") for m in measured],
            "host_mb_each": [m.get("peak_host_mb") for m in measured],
        })
        print(rows[-1], flush=True)
    return rows


def full_epoch(depth: int, precision: str, images: int, image_size: int) -> dict[str, Any]:
    """One epoch of `images` after a warm-up epoch: its wall time, validation of 10,000
    images included, as the trainer reports it (in a fresh process)."""
    command = [sys.executable, __file__, "--epoch-child", "--depth", str(depth),
               "--epoch-images", str(images), "--image-size", str(image_size), "--out", "."]
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "PRECISION": precision})
    if done.returncode != 0:
        sys.stderr.write(done.stderr[-3000:])
        raise SystemExit("the full-epoch run failed")
    records = json.loads(done.stdout.strip().splitlines()[-1])
    timed = records[-1]
    return {
        "images": images, "precision": precision, "validation_images": 10000,
        "epoch_seconds": round(timed["seconds"], 1),
        "train_images_per_second": round(timed["images_per_second"], 1),
        "first_epoch_seconds": round(records[0]["seconds"], 1),  # compiling included
    }


def epoch_child(args: argparse.Namespace) -> int:
    import tempfile

    from sweeps.config import RunConfig
    from trainer import train

    config = RunConfig(
        dataset="synthetic", depth=args.depth, epochs=2, batch_size=64,
        image_shape=(args.image_size, args.image_size, 3), train_size=args.epoch_images,
        validation_size=10000, precision=os.environ.get("PRECISION", "auto"),
        learning_rate=8e-4, weight_decay=0.2, ema_momentum=0.98,
    )
    records: list[Any] = []
    with tempfile.TemporaryDirectory() as directory:
        train(config, records.append, directory)
    print(json.dumps([r.as_dict() for r in records]))
    return 0


def project_table1(epoch: dict[str, Any], concurrency: list[dict[str, Any]]) -> dict[str, Any]:
    """Table 1's wall time: 14 × 60 epochs at the measured epoch time, sped up by the
    measured gain of running the best number of trials at once."""
    best = max(concurrency, key=lambda row: row["total_images_per_second"])
    speedup = best["total_images_per_second"] / concurrency[0]["total_images_per_second"]
    total = TABLE1_RUNS * TABLE1_EPOCHS * epoch["epoch_seconds"] / speedup
    return {
        "runs": TABLE1_RUNS, "epochs": TABLE1_EPOCHS, "concurrent_trials": best["trials"],
        "epoch_seconds_one_trial": epoch["epoch_seconds"],
        "speedup_from_concurrency": round(speedup, 2),
        "projected_minutes": round(total / 60, 1),
    }


def markdown(results: dict[str, Any]) -> str:
    lines = [f"GPU figures ({results['device']}, {results['date']})", ""]
    lines += ["| precision | trainer images/s | baseline images/s | ratio | device MB |", "| --- | --- | --- | --- | --- |"]
    lines += [f"| {r['precision']} | {r['trainer']} | {r['baseline']} | {r['ratio']}× | {r['device_mb']} |"
              for r in results["precisions"]]
    lines += ["", "| trials at once | total images/s | device MB each |", "| --- | --- | --- |"]
    lines += [f"| {r['trials']} | {r['total_images_per_second']} | {r['device_mb_each']} |"
              for r in results["concurrency"]]
    epoch, table = results["full_epoch"], results["table1"]
    lines += ["", f"full epoch: {epoch['images']} images + {epoch['validation_images']} validated in "
              f"{epoch['epoch_seconds']} s ({epoch['precision']}; first epoch with compiling {epoch['first_epoch_seconds']} s)",
              f"Table 1 projected: {table['projected_minutes']} min ({table['runs']} runs × {table['epochs']} epochs, "
              f"{table['concurrent_trials']} trials at once)"]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--depth", type=int, default=56)
    parser.add_argument("--images", type=int, default=8192, help="images per throughput epoch")
    parser.add_argument("--epoch-images", type=int, default=50000, help="the full epoch's images")
    parser.add_argument("--counts", default="1,2,4,8")
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: check the script on a CPU")
    parser.add_argument("--epoch-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.epoch_child:
        return epoch_child(args)
    if args.quick:
        args.depth, args.images, args.epoch_images, args.image_size = 11, 256, 512, 16
    args.out.mkdir(parents=True, exist_ok=True)
    backend = os.environ.get("KERAS_BACKEND", "jax")
    common = ["--depth", str(args.depth), "--images", str(args.images), "--epochs", "2",
              "--warmup", "1", "--backend", backend, "--image-size", str(args.image_size)]
    results: dict[str, Any] = {"date": time.strftime("%Y-%m-%d"), "settings": vars(args) | {"out": str(args.out)}}
    results["precisions"] = precisions(common, ["float32", "mixed_float16", "mixed_bfloat16"])
    counts = [int(c) for c in args.counts.split(",")]
    results["concurrency"] = concurrent(common, "mixed_bfloat16", counts)
    results["full_epoch"] = full_epoch(args.depth, "mixed_bfloat16", args.epoch_images, args.image_size)
    results["table1"] = project_table1(results["full_epoch"], results["concurrency"])
    results["device"] = _device()
    (args.out / "gpu.json").write_text(json.dumps(results, indent=1))
    text = markdown(results)
    (args.out / "gpu.md").write_text(text)
    print(text)
    return 0


def _device() -> str:
    try:
        import jax

        return str(jax.devices()[0].device_kind)
    except Exception:  # noqa: BLE001 - the figures stand without the name
        return "unknown device"


if __name__ == "__main__":
    sys.exit(main())
