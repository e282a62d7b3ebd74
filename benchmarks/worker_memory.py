"""Worker memory: a worker's resident set over 20 consecutive trials, against a notebook.

The runner trains each trial in a child process, so that the long-lived worker never
holds Keras' graphs. The issue's target: the peak RSS of a worker over 20 consecutive
trials stays flat. In one run, at the same time:

- the project: `sweep run FILE --workers 1` on 20 tiny one-epoch digits runs (ResNet11).
  A psutil sampler polls the process tree every 0.1 s: the worker's RSS right after
  each of its children ended, and each child's peak (the largest RSS sampled; a spike
  shorter than 0.1 s is missed). This process cannot wait for the children itself
  (the worker starts them), so it samples them.
- the baseline, the notebook way: one long-lived Python process that calls
  `trainer.train(config, on_epoch, checkpoint_dir)` on the same 20 configurations, with
  `keras.backend.clear_session()` between them, and reports its own VmRSS after each.

Both run side by side (resident memory does not depend on the CPU they share, and it
halves the benchmark's time). Growth is the last sample minus the first (after trial
1, once the imports are in); the ratio is the notebook's growth over the worker's.

    python benchmarks/worker_memory.py [--trials 20] [--epochs 1]

Exits 1 if a run is not complete, or the worker's RSS grows by more than
`--flat-mib` (default 8 MiB) or 5 % over the trials.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import (
    TreeSampler,
    memory_kb,
    own_peak_kb,
    print_block,
    ratio,
    sqlite_url,
    start_sweep,
    sweep_env,
    write_sweep,
)

STUDY = "memory"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20, help="consecutive trials (default 20)")
    parser.add_argument("--epochs", type=int, default=1, help="epochs per trial (default 1)")
    parser.add_argument("--train-size", type=int, default=128, help="digits training images (default 128)")
    parser.add_argument("--flat-mib", type=float, default=8.0,
                        help="the worker's allowed growth, MiB, or 5 %% if larger (default 8)")
    parser.add_argument("--notebook", nargs=2, metavar=("FILE", "DIR"), help=argparse.SUPPRESS)
    return parser


def notebook(file: str, directory: str) -> None:
    """Hidden mode, the baseline: every trial in this one process; a JSON line each."""
    import keras

    from sweeps.sweep_file import load_sweep
    from trainer import train

    for number, trial in enumerate(load_sweep(file).trials(), start=1):
        train(trial.config, lambda _record: None, Path(directory) / trial.run_key)
        keras.backend.clear_session()
        print(json.dumps({"trial": number, "rss_kb": memory_kb(os.getpid()), "hwm_kb": own_peak_kb()}), flush=True)


def series(values_kb: list[int]) -> dict[str, float]:
    """First, last and largest sample and the growth, in MiB."""
    if not values_kb:
        return {"first": float("nan"), "last": float("nan"), "max": float("nan"), "growth": float("nan")}
    mib = [v / 1024 for v in values_kb]
    return {"first": mib[0], "last": mib[-1], "max": max(mib), "growth": mib[-1] - mib[0]}


def run(args: argparse.Namespace, folder: Path) -> tuple[dict[str, Any], bool]:
    """Runs the sweep and the notebook together; the figures and whether the sweep completed."""
    from results.store.result_store import ResultStore

    file = write_sweep(folder, STUDY, points=args.trials, epochs=args.epochs, train_size=args.train_size)
    url = sqlite_url(folder)
    started = time.perf_counter()
    baseline = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "--notebook", str(file), str(folder / "notebook")],
        cwd=folder, env=sweep_env(), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    sweep = start_sweep(file, url, workers=1, cwd=folder, log=folder / "sweep.log")
    with TreeSampler(sweep.pid, interval=0.1) as sampler:
        code = sweep.wait(timeout=1800)
    sweep_seconds = time.perf_counter() - started
    lines, _ = baseline.communicate(timeout=1800)
    notebook_seconds = time.perf_counter() - started
    with ResultStore(url) as store:
        complete = sum(r["state"] == "complete" for r in store.runs(STUDY))

    workers = sampler.of_kind("worker")
    worker_pid = workers[0].pid if workers else -1
    after = [rss for parent, _child, rss in sampler.after_child if parent == worker_pid]
    children = [c.peak_kb for c in sampler.of_kind("child")]
    launcher = sampler.seen.get(sweep.pid)
    rows = [json.loads(line) for line in lines.splitlines() if line.startswith("{")]
    worker, child, book = series(after), series(children), series([r["rss_kb"] for r in rows])
    allowed = max(args.flat_mib, 0.05 * worker["first"])
    flat = worker["growth"] <= allowed
    figures = {
        "trials": args.trials,
        "runs_complete": f"{complete}/{args.trials}",
        "worker_samples": len(after),
        "worker_rss_first_mib": worker["first"],
        "worker_rss_last_mib": worker["last"],
        "worker_rss_max_mib": worker["max"],
        "worker_rss_growth_mib": worker["growth"],
        "worker_flat_allowed_mib": allowed,
        "worker_flat": flat,
        "launcher_rss_max_mib": (launcher.peak_kb / 1024) if launcher else float("nan"),
        "child_peak_first_mib": child["first"],
        "child_peak_last_mib": child["last"],
        "child_peak_max_mib": child["max"],
        "notebook_trials": len(rows),
        "notebook_rss_first_mib": book["first"],
        "notebook_rss_last_mib": book["last"],
        "notebook_rss_max_mib": book["max"],
        "notebook_rss_growth_mib": book["growth"],
        "growth_ratio_notebook_vs_worker": ratio(book["growth"], max(worker["growth"], 0.0)),
        "growth_per_trial_worker_mib": worker["growth"] / max(1, len(after) - 1),
        "growth_per_trial_notebook_mib": book["growth"] / max(1, len(rows) - 1),
        "sweep_wall_s": sweep_seconds,
        "notebook_wall_s": notebook_seconds,
    }
    ok = code == 0 and complete == args.trials and len(rows) == args.trials and flat
    return figures, ok


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.notebook:
        notebook(*args.notebook)
        return 0
    began = time.perf_counter()
    print(f"{args.trials} trials: sweep run --workers 1 and a notebook process, side by side …", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        figures, ok = run(args, Path(tmp))
    figures["benchmark_wall_s"] = time.perf_counter() - began
    print(
        f"\nworker RSS {figures['worker_rss_first_mib']:.0f} → {figures['worker_rss_last_mib']:.0f} MiB "
        f"({figures['worker_rss_growth_mib']:+.1f}); notebook {figures['notebook_rss_first_mib']:.0f} → "
        f"{figures['notebook_rss_last_mib']:.0f} MiB ({figures['notebook_rss_growth_mib']:+.1f}); "
        f"children peak at {figures['child_peak_max_mib']:.0f} MiB each, freed as each trial ends."
    )
    print_block("worker_memory", figures)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
