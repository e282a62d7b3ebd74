"""Concurrency: 1, 2, 4 and 8 workers on SQLite and on PostgreSQL, against GridSampler.

For each storage and each worker count, on a fresh database, `sweep run FILE --workers
N` trains a grid of tiny one-epoch digits runs (ResNet11), and the benchmark reports:

- runs/minute: complete runs over the command's wall time (start-up included);
- duplicates: runs trained more than once: claimed twice (`attempts > 1`), an epoch
  trained twice (`trainings > 1`), or more than one COMPLETE Optuna trial per run key;
- lock errors: lines with SQLite's "database is locked" in the workers' logs
  (`<checkpoints>/<study>/worker-*.log`), the runs' training logs and the command's
  output.

The baseline, in the same run and on the same kind of database: Optuna's own way, N
processes each calling `study.optimize(objective, n_trials=…)` with a `GridSampler` on
the same grid and a trivial objective; its trials beyond the grid's points are its
duplicates (the project's reference: a 3×3 grid with 4 processes gave 12 trials).

The grid has 2 points by default, so that the whole benchmark fits its CPU budget (each
run costs about 10 CPU-seconds, mostly the child's TensorFlow import and the first
epoch's tracing, and this machine has 2 cores): N workers started together race for
them on a fresh database, which is what duplicates come from; runs/minute then mostly
shows the start-up cost. `--points auto` gives every worker a run (max(2, N) points).
PostgreSQL is a throw-away cluster (testkit/postgres.py); without the server
installed that half is skipped, not failed.

    python benchmarks/concurrency.py [--workers 1,2,4,8] [--backends sqlite,postgresql]
                                     [--points 2|K|auto] [--epochs 1]

Exits 1 if any sweep leaves a run incomplete, trains one twice, or logs a lock error.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common import (
    audit,
    count_lock_errors,
    grid_values,
    print_block,
    run_sweep,
    sqlite_url,
    study_logs,
    sweep_env,
    write_sweep,
)

STUDY = "concurrency"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", default="1,2,4,8", help="worker counts (default 1,2,4,8)")
    parser.add_argument("--backends", default="sqlite,postgresql", help="sqlite, postgresql or both")
    parser.add_argument("--points", default="2",
                        help="grid points per sweep: a number, or auto for max(2, workers) (default 2)")
    parser.add_argument("--epochs", type=int, default=1, help="epochs per run (default 1)")
    parser.add_argument("--train-size", type=int, default=128, help="digits training images (default 128)")
    parser.add_argument("--grid-worker", nargs=3, metavar=("URL", "STUDY", "VALUES"), help=argparse.SUPPRESS)
    return parser


@dataclass
class Outcome:
    """One sweep with N workers, and the GridSampler baseline beside it."""

    backend: str
    workers: int
    points: int
    seconds: float
    returncode: int
    complete: int
    duplicates: int
    lock_errors: int
    grid_trials: int
    grid_duplicates: int
    grid_lock_errors: int

    @property
    def runs_per_minute(self) -> float:
        return 60.0 * self.complete / self.seconds

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and self.complete == self.points and not self.duplicates and not self.lock_errors


# -- the databases -----------------------------------------------------------------------


@contextmanager
def sqlite_databases(folder: Path) -> Iterator[Callable[[str], str]]:
    """A fresh SQLite file per name."""
    yield lambda name: sqlite_url(folder, f"{name}.db")


@contextmanager
def postgres_databases() -> Iterator[Callable[[str], str] | None]:
    """A throw-away PostgreSQL cluster, a fresh database per name; None without one."""
    from testkit.postgres import create_database, missing_reason, postgres_cluster

    reason = missing_reason()
    if reason:
        print(f"PostgreSQL skipped: {reason}", flush=True)
        yield None
        return
    with postgres_cluster() as base:
        yield lambda name: create_database(base, name)


# -- one worker count --------------------------------------------------------------------


def sweep_with(folder: Path, url: str, workers: int, points: int, args: argparse.Namespace) -> dict[str, Any]:
    """`sweep run --workers N` on a fresh database: speed, duplicates, lock errors."""
    folder.mkdir(parents=True, exist_ok=True)
    file = write_sweep(folder, STUDY, points=points, epochs=args.epochs, train_size=args.train_size, validation_size=64)
    checkpoints = folder / "checkpoints"
    done = run_sweep(file, url, workers=workers, cwd=folder, extra=["--checkpoints", str(checkpoints)])
    found = audit(url, STUDY, args.epochs)
    locks = count_lock_errors(study_logs(checkpoints, STUDY), [done.stdout, done.stderr])
    if done.returncode != 0:
        sys.stderr.write(done.stderr[-2000:])
    return {"seconds": done.seconds, "returncode": done.returncode, "complete": found.complete,
            "duplicates": found.duplicate_runs, "lock_errors": locks}


def grid_worker(url: str, study: str, values: str) -> None:
    """Hidden mode: one process of the baseline, Optuna's GridSampler loop."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    grid = {"weight_decay": json.loads(values)}
    loaded = optuna.load_study(study_name=study, storage=url, sampler=optuna.samplers.GridSampler(grid))

    def objective(trial: optuna.Trial) -> float:
        decay = trial.suggest_float("weight_decay", min(grid["weight_decay"]), max(grid["weight_decay"]))
        trial.report(decay, 1)
        trial.set_user_attr("epochs", 1)
        return decay

    # The grid's size bounds each process; GridSampler stops the study once it is done.
    loaded.optimize(objective, n_trials=len(grid["weight_decay"]))


def grid_baseline(url: str, workers: int, points: int) -> dict[str, int]:
    """N processes racing through one grid with GridSampler: trials, duplicates, locks."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    name = "grid"
    optuna.create_study(study_name=name, storage=url, direction="maximize")
    values = json.dumps(grid_values(points))
    command = [sys.executable, str(Path(__file__).resolve()), "--grid-worker", url, name, values]
    processes = [
        subprocess.Popen(command, env=sweep_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(workers)
    ]
    outputs = [p.communicate(timeout=600) for p in processes]
    trials = optuna.load_study(study_name=name, storage=url).get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    distinct = {t.params.get("weight_decay") for t in complete}
    return {
        "grid_trials": len(complete),
        "grid_duplicates": len(complete) - len(distinct),
        "grid_lock_errors": count_lock_errors([], [err for _, err in outputs]),
    }


def measure(backend: str, database: Callable[[str], str], folder: Path, workers: int, args: argparse.Namespace) -> Outcome:
    points = max(2, workers) if args.points == "auto" else int(args.points)
    print(f"{backend}: {workers} worker(s), {points} runs …", flush=True)
    sweep = sweep_with(folder / f"{backend}-{workers}", database(f"sweep_{workers}"), workers, points, args)
    baseline = grid_baseline(database(f"grid_{workers}"), workers, points)
    outcome = Outcome(backend, workers, points, **sweep, **baseline)
    print(
        f"  {outcome.seconds:.1f} s, {outcome.runs_per_minute:.1f} runs/min, {outcome.complete}/{points} complete, "
        f"duplicates {outcome.duplicates}, lock errors {outcome.lock_errors}; GridSampler: "
        f"{outcome.grid_trials} trials for {points} points", flush=True,
    )
    return outcome


# -- output ------------------------------------------------------------------------------


def table(outcomes: list[Outcome]) -> None:
    print(f"\n{'storage':<11} {'workers':>7} {'runs':>5} {'s':>7} {'runs/min':>9} {'dupl.':>6} {'locks':>6}"
          f" | {'grid trials':>11} {'grid dupl.':>10} {'grid locks':>10}")
    for o in outcomes:
        print(f"{o.backend:<11} {o.workers:>7} {o.complete:>2}/{o.points:<2} {o.seconds:>7.1f} {o.runs_per_minute:>9.2f}"
              f" {o.duplicates:>6} {o.lock_errors:>6} | {o.grid_trials:>11} {o.grid_duplicates:>10} {o.grid_lock_errors:>10}")


def block(outcomes: list[Outcome], began: float) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    for o in outcomes:
        key = f"{o.backend}_w{o.workers}"
        figures[f"{key}_runs"] = f"{o.complete}/{o.points}"
        figures[f"{key}_runs_per_min"] = o.runs_per_minute
        figures[f"{key}_duplicates"] = o.duplicates
        figures[f"{key}_lock_errors"] = o.lock_errors
        figures[f"{key}_gridsampler_trials"] = o.grid_trials
        figures[f"{key}_gridsampler_duplicates"] = o.grid_duplicates
    figures["duplicates_total"] = sum(o.duplicates for o in outcomes)
    figures["lock_errors_total"] = sum(o.lock_errors for o in outcomes)
    figures["gridsampler_duplicates_total"] = sum(o.grid_duplicates for o in outcomes)
    figures["gridsampler_lock_errors_total"] = sum(o.grid_lock_errors for o in outcomes)
    figures["all_correct"] = all(o.ok for o in outcomes)
    figures["benchmark_wall_s"] = time.perf_counter() - began
    return figures


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.grid_worker:
        grid_worker(*args.grid_worker)
        return 0
    began = time.perf_counter()
    counts = [int(w) for w in args.workers.split(",") if w.strip()]
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = sorted(set(backends) - {"sqlite", "postgresql"})
    if unknown or (args.points != "auto" and not args.points.isdigit()):
        sys.stderr.write(f"--backends: sqlite and/or postgresql; --points: a number or auto ({unknown or args.points})\n")
        return 2
    outcomes: list[Outcome] = []
    with tempfile.TemporaryDirectory(prefix="bench-concurrency-") as tmp:
        folder = Path(tmp)
        for backend in backends:
            opener = sqlite_databases(folder) if backend == "sqlite" else postgres_databases()
            with opener as database:
                if database is None:
                    continue
                outcomes += [measure(backend, database, folder, w, args) for w in counts]
    table(outcomes)
    print_block("concurrency", block(outcomes, began))
    return 0 if all(o.ok for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
