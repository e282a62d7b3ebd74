"""Dispatch overhead: the runner's cost per trial, with and without starting each trial's
child ahead of its run, against bare Optuna.

Runs, in one go, on SQLite databases in a temporary folder:

1. `sweep run` of N digits runs (ResNet11, E epochs each) with one worker, twice: with
   `--no-start-ahead` (before: each run's child starts, and imports TensorFlow, only
   once its run is claimed) and as shipped (after: the next run's child imports while
   the current run trains). Each run's `started`/`finished` come from the store.
2. A *bare child*: a fresh Python that imports TensorFlow/Keras and the trainer, then
   calls `trainer.train()` on the same configuration: the trainer's own time (data
   load, model build and compile, the epochs, checkpoint writes) without any runner.
3. The per-epoch writes a child makes (`ResultStore.record_epoch` + an intermediate
   value), timed in this process.
4. The baseline: `optuna.create_study(storage=sqlite…).optimize(objective)` whose
   trivial objective reports E epochs and sets a user attribute.

The visible overhead per trial is the steady wall time per trial (from the first run's
end to the last run's end, over N-1 runs: the one-off start of the command, its worker
and its first child are left out) minus the bare child's `train()` time. It holds
everything the runner adds per trial: recording the outcome, claiming the next run,
Optuna's bookkeeping, the child's start (hidden or not), its database connections and
per-epoch writes, and any slowdown of training by a child importing beside it.

Targets (the issue's): under 1 s per trial on this CPU with the start hidden, and under
1 % of a 60-epoch trial on a GPU. The GPU share is a projection: the per-trial cost
measured here plus 60 times the per-epoch writes, over 60 epochs of an *assumed* epoch
time (`--gpu-epoch-seconds`, default 15 s, about a ResNet56v2 CIFAR-10 epoch on a
modern GPU; not measured here). A hidden start needs a run longer than the child's
imports (about 5.5 s here), hence the default sizes.

    python benchmarks/dispatch_overhead.py [--trials 4] [--epochs 3] [--train-size 1024]

Exits 1 when a sweep does not complete every run; the speed targets are reported, not
enforced.
"""

from __future__ import annotations

import argparse
import importlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common import (
    Finished,
    print_block,
    ratio,
    sqlite_url,
    sweep_command,
    sweep_env,
    write_sweep,
)

CPU_TARGET_SECONDS = 1.0
GPU_TARGET_SHARE = 0.01
GPU_EPOCHS = 60
# What a child imports for training (Keras pulls TensorFlow in), in a bare process.
CHILD_IMPORTS = (
    "keras", "sklearn.datasets", "sklearn.model_selection", "trainer.augment",
    "trainer.checkpoint", "trainer.data", "trainer.device", "trainer.model", "trainer.optimizer",
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=4, help="runs in each sweep (default 4, at least 2)")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per run (default 3)")
    parser.add_argument("--train-size", type=int, default=1024, help="digits training images (default 1024)")
    parser.add_argument("--baseline-trials", type=int, default=20,
                        help="trials of the Optuna baseline: a few ms each, so more than --trials (default 20)")
    parser.add_argument("--write-epochs", type=int, default=30, help="epoch writes timed (default 30)")
    parser.add_argument("--gpu-epoch-seconds", type=float, default=15.0,
                        help="ASSUMED seconds of one GPU epoch for the projection (default 15)")
    parser.add_argument("--bare-child", nargs=2, metavar=("CONFIG", "DIR"), help=argparse.SUPPRESS)
    return parser


# -- 1. the sweeps -----------------------------------------------------------------------


@dataclass
class SweepTiming:
    """A sweep's wall time and its runs' spans, from the store."""

    finished: Finished
    spans: list[tuple[float, float]]  # (started, finished) per run, in order, epoch seconds
    epochs_seconds: list[float]  # per run: Σ of its epochs' `seconds`
    complete: int

    @property
    def steady_per_trial(self) -> float:
        """Wall seconds per run once the first run has ended (the command's, its
        worker's and its first child's start are left out)."""
        ends = sorted(end for _, end in self.spans)
        return (ends[-1] - ends[0]) / (len(ends) - 1)


def time_sweep(folder: Path, name: str, trials: int, epochs: int, train_size: int, *, ahead: bool) -> SweepTiming:
    """`sweep run` with one worker; `ahead`: children started ahead of their runs."""
    from results.store.result_store import ResultStore

    file = write_sweep(folder, name, points=trials, epochs=epochs, train_size=train_size)
    url = sqlite_url(folder, f"{name}.db")
    extra = () if ahead else ("--no-start-ahead",)
    started = time.perf_counter()
    done = subprocess.run(
        sweep_command(file, url, 1, *extra), cwd=folder, env=sweep_env(),
        capture_output=True, text=True, timeout=1800,
    )
    seconds = time.perf_counter() - started
    with ResultStore(url) as store:
        runs = store.runs(name)
        spans = [(r["started"].timestamp(), r["finished"].timestamp()) for r in runs if r["finished"]]
        per_run = [sum(e["seconds"] for e in store.epochs(r["id"])) for r in runs]
        complete = sum(r["state"] == "complete" for r in runs)
    return SweepTiming(Finished(done.returncode, seconds, done.stdout, done.stderr), spans, per_run, complete)


# -- 2. the bare child -------------------------------------------------------------------


def bare_child(config_json: str, directory: str) -> None:
    """Hidden mode: imports as a child would, trains once, prints the timings as JSON."""
    began = time.perf_counter()
    for name in CHILD_IMPORTS:  # what is timed: TensorFlow through Keras, the trainer
        importlib.import_module(name)
    from sweeps.config import RunConfig
    from trainer import train

    imported = time.perf_counter()
    records: list[float] = []
    train(RunConfig.model_validate(json.loads(config_json)), lambda r: records.append(r.seconds), directory)
    trained = time.perf_counter()
    print(json.dumps({"imports": imported - began, "train": trained - imported, "epochs": sum(records)}))


@dataclass
class BareChild:
    """One trial trained by a bare process: its whole wall time, split."""

    wall: float  # interpreter start to exit, as seen from here
    imports: float
    train: float  # the trainer.train() call
    epochs: float  # Σ epoch seconds inside it

    @property
    def start_cost(self) -> float:
        """Everything but the train() call: interpreter, imports, exit."""
        return self.wall - self.train

    @property
    def setup(self) -> float:
        """The trainer outside its epochs: data, model, compile, checkpoints."""
        return self.train - self.epochs


def time_bare_child(folder: Path, trials: int, epochs: int, train_size: int) -> BareChild:
    from sweeps.sweep_file import load_sweep

    file = write_sweep(folder, "bare", points=trials, epochs=epochs, train_size=train_size)
    config = load_sweep(file).trials()[0].config.model_dump(mode="json")
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--bare-child", json.dumps(config), str(folder / "bare-ckpt")],
        cwd=folder, env=sweep_env(), capture_output=True, text=True, check=True, timeout=600,
    )
    wall = time.perf_counter() - started
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    return BareChild(wall, figures["imports"], figures["train"], figures["epochs"])


# -- 3. a child's writes per epoch -------------------------------------------------------


def time_epoch_writes(folder: Path, count: int) -> float:
    """Seconds per epoch of what a child writes after each epoch, on the runner's storage."""
    from results.store.optuna_study import OptunaStudy
    from results.store.result_store import ResultStore
    from sweep_runner.storage import optuna_storage, quiet_optuna

    quiet_optuna()
    url = sqlite_url(folder, "writes.db")
    with ResultStore(url) as store:
        study = OptunaStudy.create(optuna_storage(url), "writes", ["val_acc"], ["maximize"])
        run_id = store.register_run("writes", "k", label="k", comment=None, config={})
        trial = study.handle(study.trial_id(study.study.ask().number))  # as a child holds it
        record = {"loss": 1.0, "acc": 0.5, "val_loss": 1.0, "val_acc": 0.5, "lr": 1e-3,
                  "seconds": 1.0, "images_per_second": 100.0}
        started = time.perf_counter()
        for epoch in range(1, count + 1):
            store.record_epoch(run_id, {"epoch": epoch, **record})
            trial.report(0.5, epoch)  # as a child does
        return (time.perf_counter() - started) / count


# -- 4. the baseline ---------------------------------------------------------------------


def time_optuna(folder: Path, trials: int, epochs: int) -> float:
    """Seconds per trial of Optuna's own loop on a SQLite file, trivial objective."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(storage=sqlite_url(folder, "optuna.db"), direction="maximize")

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("weight_decay", 0.0, 0.3)
        for epoch in range(1, epochs + 1):
            trial.report(x * epoch, epoch)
        trial.set_user_attr("epochs", epochs)
        return x

    started = time.perf_counter()
    study.optimize(objective, n_trials=trials)
    return (time.perf_counter() - started) / trials


# -- the figures -------------------------------------------------------------------------


def figures(args: argparse.Namespace, before: SweepTiming, after: SweepTiming, bare: BareChild,
            writes: float, optuna_s: float) -> dict[str, Any]:
    """The visible overhead per trial before and after, with the baseline and the projection."""
    before_s = before.steady_per_trial - bare.train
    after_s = after.steady_per_trial - bare.train
    gpu_trial = GPU_EPOCHS * args.gpu_epoch_seconds
    gpu_share = (after_s - args.epochs * writes + GPU_EPOCHS * writes) / gpu_trial
    return {
        "trials": args.trials,
        "epochs_per_trial": args.epochs,
        "bare_child_train_s": bare.train,
        "bare_child_start_s": bare.start_cost,
        "bare_child_imports_s": bare.imports,
        "before_wall_s": before.finished.seconds,
        "before_steady_s_per_trial": before.steady_per_trial,
        "before_overhead_s_per_trial": before_s,
        "before_epochs_s_per_trial": statistics.mean(before.epochs_seconds),
        "after_wall_s": after.finished.seconds,
        "after_steady_s_per_trial": after.steady_per_trial,
        "after_overhead_s_per_trial": after_s,
        "after_epochs_s_per_trial": statistics.mean(after.epochs_seconds),
        "saved_s_per_trial": before.steady_per_trial - after.steady_per_trial,
        "ratio_steady_wall_before_vs_after": ratio(before.steady_per_trial, after.steady_per_trial),
        # Undefined once the start is hidden entirely (the after figure is then noise
        # around 0 on a shared machine): the saved seconds say it instead.
        "ratio_overhead_before_vs_after": ratio(before_s, after_s) if after_s > 0.05 else None,
        "epoch_writes_ms": writes * 1000,
        "optuna_optimize_s_per_trial": optuna_s,
        "ratio_after_vs_optuna_per_trial": ratio(after_s, optuna_s) if after_s > 0 else None,
        "cpu_target_s_per_trial": CPU_TARGET_SECONDS,
        "cpu_target_met": after_s < CPU_TARGET_SECONDS,
        "gpu_epoch_s_assumed": args.gpu_epoch_seconds,
        "gpu_projected_share_pct": 100 * gpu_share,
        "gpu_target_met": gpu_share < GPU_TARGET_SHARE,
        "runs_complete": f"{before.complete}/{args.trials} before, {after.complete}/{args.trials} after",
    }


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.bare_child:
        bare_child(*args.bare_child)
        return 0
    if args.trials < 2:
        sys.stderr.write("--trials: at least 2 (the steady time per trial is between runs' ends)\n")
        return 2
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-dispatch-") as tmp:
        folder = Path(tmp)
        sweeps = {}
        for name, ahead in (("before", False), ("after", True)):
            print(f"sweep run ({name}): {args.trials} runs x {args.epochs} epochs, 1 worker, SQLite …", flush=True)
            sweeps[name] = time_sweep(folder, name, args.trials, args.epochs, args.train_size, ahead=ahead)
            timing = sweeps[name]
            print(f"  {timing.finished.seconds:.1f} s, exit {timing.finished.returncode}, "
                  f"{timing.steady_per_trial:.2f} s per trial once started", flush=True)
        print("bare child (imports + trainer.train on the same config) …", flush=True)
        bare = time_bare_child(folder, args.trials, args.epochs, args.train_size)
        print(f"  {bare.wall:.1f} s (imports {bare.imports:.2f} s, train {bare.train:.2f} s)", flush=True)
        writes = time_epoch_writes(folder, args.write_epochs)
        optuna_s = time_optuna(folder, args.baseline_trials, args.epochs)
        result = figures(args, sweeps["before"], sweeps["after"], bare, writes, optuna_s)
    result["benchmark_wall_s"] = time.perf_counter() - began
    overhead_ratio = result["ratio_overhead_before_vs_after"]
    print(
        f"\nvisible overhead per trial: before {result['before_overhead_s_per_trial']:.2f} s "
        f"(each child imports after its run is claimed), after {result['after_overhead_s_per_trial']:.2f} s "
        f"(started ahead); ratio {f'{overhead_ratio:.1f}x' if overhead_ratio else 'undefined (after is ~0)'}; "
        f"{result['saved_s_per_trial']:.2f} s saved per trial, wall per trial "
        f"{result['ratio_steady_wall_before_vs_after']:.2f}x. Optuna optimize: {optuna_s * 1000:.1f} ms/trial.\n"
        f"Projected on a GPU (ASSUMED {args.gpu_epoch_seconds:g} s/epoch, {GPU_EPOCHS} epochs): "
        f"{result['gpu_projected_share_pct']:.2f} % of a trial. A GPU child also initialises "
        "CUDA, not measured here."
    )
    print_block("dispatch_overhead", result)
    failed = [t for t in sweeps.values() if t.complete != args.trials]
    for timing in failed:
        sys.stderr.write(timing.finished.stderr[-3000:])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
