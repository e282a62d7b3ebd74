"""An m sweep against a one-run sweep (issue 19): runs that differ only in m share one
training, so N values of m should cost about one run, not N.

Runs three tiny sweeps (ResNet11 on digits) one after another with one worker: one run;
`--values` values of m (shared: one training); and, as the baseline of what sharing
saves, the same values of m with `ema_overwrite_frequency` set (which trains on the
averages, so every run trains on its own). Prints the wall times and the ratios, and
counts the checkpoint folders that trained (one per child); exits 1 when the shared
sweep trained more than once. With `--workers N` the
shared sweep runs N workers, as many as its runs at most: they must still train once
(one worker trains, the others wait to take over should it die).

    python benchmarks/m_sweep.py                # a few minutes on 2 busy cores
    python benchmarks/m_sweep.py --values 6 --epochs 3
    python benchmarks/m_sweep.py --values 3 --workers 3
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from common import run_sweep, sqlite_url, sweep_text

MOMENTA = (0.5, 0.9, 0.95, 0.98, 0.99, 0.995)


def _sweep(folder: Path, name: str, space: str, epochs: int, extra: str = "", workers: int = 1) -> tuple[float, int]:
    path = folder / f"{name}.toml"
    text = sweep_text(name, epochs=epochs, space=space, schedule=False, train_size=256, validation_size=64)
    path.write_text(text.replace("[train]\n", f"[train]\n{extra}"), encoding="utf-8")
    done = run_sweep(path, sqlite_url(folder), workers=workers, cwd=folder)
    if done.returncode != 0:
        raise SystemExit(f"{name}: exit {done.returncode}: {done.stderr[-2000:]}")
    trained = [p for p in (folder / "checkpoints" / name).iterdir() if (p / "train.log").exists()]
    return done.seconds, len(trained)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--values", type=int, default=3, help="values of m (default 3, at most 6)")
    parser.add_argument("--epochs", type=int, default=2, help="epochs per run (default 2)")
    parser.add_argument("--workers", type=int, default=1, help="workers of the shared sweep (default 1)")
    args = parser.parse_args(argv)
    values = ", ".join(map(str, MOMENTA[: args.values]))
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        one, one_trained = _sweep(folder, "one", "ema_momentum = [0.9]", args.epochs)
        shared, shared_trained = _sweep(
            folder, "shared", f"ema_momentum = [{values}]", args.epochs, workers=args.workers
        )
        apart, apart_trained = _sweep(
            folder, "apart", f"ema_momentum = [{values}]", args.epochs, "ema_overwrite_frequency = 1000000\n"
        )
    print(f"ResNet11v2 on digits, 256 training images, {args.epochs} epochs, "
          f"1 worker ({args.workers} for the shared sweep)")
    print(f"one_run_s: {one:.1f}   trainings: {one_trained}")
    print(f"m_sweep_{args.values}_shared_s: {shared:.1f}   trainings: {shared_trained}   ratio to one run: {shared / one:.2f}")
    print(f"m_sweep_{args.values}_apart_s: {apart:.1f}   trainings: {apart_trained}   ratio to one run: {apart / one:.2f}")
    if shared_trained != 1:
        print(f"FAILED: the shared sweep trained {shared_trained} times under {args.workers} workers")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
