"""Database connections per worker, and round trips per epoch, on PostgreSQL.

Real workers (`sweep_runner.worker`, unchanged: claims, heartbeats, Optuna's trials,
fenced writes, outcomes) with 1, 4 and 16 of them at once; only the trainer is a
stand-in that sleeps each epoch (no TensorFlow), and its child imports no Keras.
A sampler counts the server's client connections (`pg_stat_activity`) every 0.1 s.

Two modes side by side:

- baseline: the engines pooled as before (SQLAlchemy's QueuePool with pre-ping, for
  the results store and Optuna's storage, in every worker and child);
- shipped: no connection held at rest (`results.store.engine.server_engine_kwargs`).

It prints, per worker count and mode, the peak of connections and the peak per
worker, and for the child the database round trips per epoch (statements, BEGIN and
COMMIT) and the connections it opens per epoch; then the ratio baseline/shipped and
the projection for 128 workers against PostgreSQL's default `max_connections = 100`.

    python benchmarks/connections.py [--workers 1,4,16] [--runs 2] [--epochs 3] [--epoch-seconds 1]

A server: $SWEEP_TEST_POSTGRES_URL, else a private cluster (Debian's postgresql).
Exits 1 when a study does not complete every run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()

from common import SWEEP, postgres_base, write_sweep  # noqa: E402 - common puts the project and testkit on the path

POOLED = "SWEEP_BENCH_POOLED"
COUNTERS = "SWEEP_BENCH_COUNTERS"
EPOCH_SECONDS = "SWEEP_BENCH_EPOCH_SECONDS"


# -- the stand-ins, run in the workers' and children's processes ----------------------


def _pool_as_before() -> None:
    """The baseline: pooled engines, as the store and Optuna's storage had them."""
    from results.store import engine

    engine.server_engine_kwargs = lambda: {"pool_pre_ping": True, "connect_args": {}}


def _count_round_trips() -> dict[str, int]:
    """Counts statements, BEGINs, COMMITs and new connections of every engine here."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine
    from sqlalchemy.pool import Pool

    counts = {"statements": 0, "begins": 0, "commits": 0, "connects": 0}

    def bump(name: str):  # noqa: ANN202
        def count(*_args: Any, **_kwargs: Any) -> None:
            counts[name] += 1
        return count

    event.listen(Engine, "before_cursor_execute", bump("statements"))
    event.listen(Engine, "begin", bump("begins"))
    event.listen(Engine, "commit", bump("commits"))
    event.listen(Pool, "connect", bump("connects"))
    return counts


def _sleeping_train(counts: dict[str, int]):  # noqa: ANN202
    """`trainer.train` that sleeps instead of training and goes through every write
    a real training makes: the epoch's record, the fenced checkpoint, the outcome."""
    from trainer.records import EpochRecord, TrainResult

    def train(config: Any, on_epoch: Any, checkpoint_dir: Any, *, fence: Any = None, **_: Any) -> TrainResult:
        seconds = float(os.environ.get(EPOCH_SECONDS, "1"))
        before = dict(counts)
        for epoch in range(1, config.epochs + 1):
            time.sleep(seconds)
            on_epoch(EpochRecord(epoch=epoch, loss=1.0, acc=0.5, val_loss=1.0, val_acc=0.5 + epoch / 1000,
                                 lr=config.learning_rate, seconds=seconds, images_per_second=1000.0))
            with fence(False):
                pass  # the checkpoint would be made current here
        with fence(True):
            pass  # the outcome on disk
        spent = {key: counts[key] - before[key] for key in counts}
        folder = Path(os.environ[COUNTERS])
        (folder / f"{os.getpid()}.json").write_text(json.dumps({"epochs": config.epochs, **spent}))
        return TrainResult(status="completed", epochs_completed=config.epochs, best_val_acc=0.5, best_epoch=1,
                           versions={})

    return train


def as_child(argv: list[str]) -> int:
    """A trial's child with the trainer stand-in and no Keras to import."""
    if os.environ.get(POOLED):
        _pool_as_before()
    counts = _count_round_trips()
    import trainer
    from sweep_runner import child

    trainer.train = _sleeping_train(counts)
    child.PRELOAD = ("optuna", "results.store.result_store")
    return child.main(argv)


def as_worker(argv: list[str]) -> int:
    """A real worker whose children are the stand-in."""
    if os.environ.get(POOLED):
        _pool_as_before()
    from sweep_runner import children, worker

    def start_child() -> children.Child:
        early = tempfile.TemporaryFile()
        ready, ready_end = os.pipe()
        process = subprocess.Popen(
            [sys.executable, str(HERE), "--as-child", "--parent-pid", str(os.getpid()), "--ready-fd", str(ready_end)],
            stdin=subprocess.PIPE, stdout=early, stderr=subprocess.STDOUT, pass_fds=(ready_end,),
        )
        os.close(ready_end)
        return children.Child(process, early, ready)

    children.start_child = start_child
    return worker.main(argv)


# -- the benchmark ------------------------------------------------------------------


def _sample(url: str, stop: threading.Event, peak: list[int]) -> None:
    import sqlalchemy

    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
    database = sqlalchemy.engine.make_url(url).database
    with engine.connect() as connection:
        while not stop.is_set():
            count = connection.execute(sqlalchemy.text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = :db AND pid <> pg_backend_pid()"
            ), {"db": database}).scalar_one()
            connection.rollback()
            peak[0] = max(peak[0], count)
            stop.wait(0.1)
    engine.dispose()


def measure(base_url: str, workers: int, args: argparse.Namespace, pooled: bool, folder: Path) -> dict[str, Any]:
    """One study of `workers × runs` runs, trained by `workers` workers at once."""
    from testkit.postgres import create_database
    from results.store import ResultStore

    name = f"conn{workers}{'p' if pooled else 's'}"
    url = create_database(base_url, f"bench_{name}_{os.getpid()}")
    work = folder / name
    work.mkdir()
    sweep = write_sweep(work, name, points=workers * args.runs, epochs=args.epochs)
    env = {**os.environ, "PYTHONPATH": str(HERE.parents[1]), EPOCH_SECONDS: str(args.epoch_seconds),
           COUNTERS: str(work), "TF_CPP_MIN_LOG_LEVEL": "3", **({POOLED: "1"} if pooled else {})}
    created = subprocess.run([*SWEEP, "run", str(sweep), "--storage", url, "--max-trials", "0",
                              "--checkpoints", str(work / "checkpoints")],
                             cwd=work, env=env, capture_output=True, text=True, timeout=600)
    if created.returncode != 0:
        raise SystemExit(f"connections.py: could not create the study: {created.stderr[-2000:]}")
    peak = [0]
    stop = threading.Event()
    sampler = threading.Thread(target=_sample, args=(url, stop, peak), daemon=True)
    sampler.start()
    started = time.monotonic()
    processes = [
        subprocess.Popen([sys.executable, str(HERE), "--as-worker", name, "--storage", url,
                          "--checkpoints", str(work / "checkpoints"), "--log-format", "plain"],
                         cwd=work, env=env, stdout=subprocess.DEVNULL, stderr=open(work / f"worker-{i}.log", "wb"))
        for i in range(workers)
    ]
    codes = [p.wait() for p in processes]
    wall = time.monotonic() - started
    stop.set()
    sampler.join()
    with ResultStore(url) as store:
        states = [r["state"] for r in store.runs(name)]
    counters = [json.loads(p.read_text()) for p in work.glob("[0-9]*.json")]
    epochs = sum(c["epochs"] for c in counters) or 1
    per_epoch = {key: sum(c[key] for c in counters) / epochs for key in ("statements", "begins", "commits", "connects")}
    return {
        "workers": workers, "pooled": pooled, "peak": peak[0], "per_worker": peak[0] / workers,
        "complete": states.count("complete"), "runs": len(states), "codes": codes, "wall": wall,
        "round_trips": per_epoch["statements"] + per_epoch["begins"] + per_epoch["commits"],
        **per_epoch,
    }


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] in ("--as-worker", "--as-child"):
        role, argv = sys.argv[1], sys.argv[2:]
        return as_worker(argv) if role == "--as-worker" else as_child(argv)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", default="1,4,16", help="comma-separated worker counts")
    parser.add_argument("--runs", type=int, default=2, help="runs per worker")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--epoch-seconds", type=float, default=1.0)
    args = parser.parse_args()
    counts = [int(n) for n in args.workers.split(",")]
    results = []
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="sweep-conn-") as folder:
        base = postgres_base(stack)
        if base is None:
            return 2
        for workers in counts:
            for pooled in (True, False):
                result = measure(base, workers, args, pooled, Path(folder))
                results.append(result)
                print(f"{workers:>3} workers, {'baseline (pooled)' if pooled else 'shipped (no pool)':<18}: "
                      f"peak {result['peak']:>3} connections ({result['per_worker']:.2f} per worker); child per "
                      f"epoch: {result['round_trips']:.1f} round trips ({result['statements']:.1f} statements), "
                      f"{result['connects']:.1f} connections opened; {result['complete']}/{result['runs']} "
                      f"complete in {result['wall']:.0f} s", flush=True)
    print("\n=== summary")
    failed = False
    for workers in counts:
        base_run, shipped = (next(r for r in results if r["workers"] == workers and r["pooled"] is p) for p in (True, False))
        failed |= any(r["complete"] != r["runs"] for r in (base_run, shipped))
        ratio = base_run["peak"] / shipped["peak"] if shipped["peak"] else float("inf")
        print(f"  {workers} workers: peak connections baseline {base_run['peak']}, shipped {shipped['peak']}, "
              f"ratio {ratio:.2f}")
    largest = max(counts)
    shipped = next(r for r in results if r["workers"] == largest and not r["pooled"])
    pooled = next(r for r in results if r["workers"] == largest and r["pooled"])
    print(f"  128 workers projected: baseline {128 * pooled['per_worker']:.0f}, shipped "
          f"{128 * shipped['per_worker']:.0f} connections (target: under max_connections = 100)")
    print(f"  round trips per epoch (child): {shipped['round_trips']:.1f}; connections opened per epoch: "
          f"{shipped['connects']:.1f}")
    print(f"  complete: {'all runs' if not failed else 'FAILED: runs left'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
