"""Export speed: a study of 1,000 runs × 60 epochs from SQLite, against pandas.

Builds the database in a temporary folder (bulk inserts through the results models),
then times, best of `--repeat`:

- the export, as `sweep export` runs it: open the store, read the study (a constant
  number of queries), compute every run's metrics, format the post's table;
- pandas reading the same rows (every epoch, joined with its run) with one
  `pandas.read_sql`.

and prints both times and their ratio. Target: the export under 2 s.

    python benchmarks/export_speed.py [--runs 1000] [--epochs 60] [--repeat 3]
"""

from __future__ import annotations

import argparse
import io
import math
import random
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import redirect_stdout
from datetime import UTC, datetime
from pathlib import Path

TARGET_SECONDS = 2.0


def build(url: str, study: str, runs: int, epochs: int) -> None:
    """A study of `runs` finished runs of `epochs` epochs each, the post's grid of λ × α."""
    from sqlalchemy import insert

    from results.store.models import EPOCHS, RUNS
    from results.store.result_store import ResultStore
    from sweeps.config import RunConfig

    rng = random.Random(0)
    now = datetime.now(UTC)
    decays = [0.0, 5e-4, 4e-3, 0.01, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4]
    alphas = [2e-4, 4e-4, 8e-4, 1.6e-3]
    # The post's schedule as factors η of α, stretched to `epochs`.
    marks = [epochs / 3, 2 * epochs / 3, 5 * epochs / 6, epochs]
    schedule = {"breakpoints": list(zip([1, 0.1, 0.0125, 0.005], marks, strict=True)), "relative": True}
    run_rows, epoch_rows = [], []
    for i in range(runs):
        config = RunConfig(
            weight_decay=decays[i % len(decays)],
            learning_rate=alphas[i // len(decays) % len(alphas)],
            schedule=schedule,
            epochs=epochs,
            seed=i,
        )
        run_rows.append(
            {
                "id": i + 1,
                "study": study,
                "trial_number": i,
                "run_key": config.run_key,
                "label": str(i),
                "comment": f"run {i}",
                "config": config.model_dump(mode="json"),
                "state": "complete",
                "attempts": 1,
                "host": "h",
                "worker": "w",
                "heartbeat_at": now,
                "device": "cpu",
                "versions": {"keras": "3.15.1"},
                "registered": now,
                "started": now,
                "finished": now,
            }
        )
        peak = 0.90 + 0.04 * rng.random()
        for e in range(1, epochs + 1):
            val_acc = peak * (1 - math.exp(-e / 12)) + rng.gauss(0, 0.002)
            epoch_rows.append(
                {
                    "run_id": i + 1,
                    "epoch": e,
                    "loss": 2 * math.exp(-e / 10) + 0.01,
                    "acc": min(1.0, val_acc + 0.07),
                    "val_loss": 0.3 + math.exp(-e / 8) + 0.2 * rng.random(),
                    "val_acc": val_acc,
                    "lr": config.lr_at(e),
                    "seconds": 60.0,
                    "images_per_second": 900.0,
                }
            )
    with ResultStore(url) as store, store.engine.begin() as connection:
        connection.execute(insert(RUNS), run_rows)
        connection.execute(insert(EPOCHS), epoch_rows)


def best_of(repeat: int, action: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return min(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)

    import pandas as pd
    from sqlalchemy import create_engine

    from results.report.commands import export_command

    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'sweeps.db'}"
        start = time.perf_counter()
        build(url, "bench", args.runs, args.epochs)
        print(f"built {args.runs} runs × {args.epochs} epochs in {time.perf_counter() - start:.1f} s")

        def export(format: str, style: str, epochs: bool = False) -> Callable[[], object]:
            def run() -> None:
                with redirect_stdout(io.StringIO()) as out:
                    export_command(
                        "bench",
                        storage=url,
                        format=format,
                        style=style,
                        output=None,
                        threshold=None,
                        epochs=epochs,
                    )
                assert len(out.getvalue()) > args.runs

            return run

        sql = (
            "SELECT runs.label, runs.run_key, runs.config, epochs.* FROM epochs "
            "JOIN runs ON runs.id = epochs.run_id WHERE runs.study = 'bench' "
            "ORDER BY epochs.run_id, epochs.epoch"
        )

        def read_sql() -> None:
            engine = create_engine(url)
            frame = pd.read_sql(sql, engine)
            engine.dispose()
            assert len(frame) == args.runs * args.epochs

        export("md", "post")()  # warm: imports, the file in the page cache
        read_sql()
        pandas_seconds = best_of(args.repeat, read_sql)
        export_seconds = best_of(args.repeat, export("md", "post"))
        print(f"pandas.read_sql of the {args.runs * args.epochs:,} joined rows: {pandas_seconds:.3f} s")
        print(f"sweep export (post table, md), from opening the store: {export_seconds:.3f} s")
        print(f"ratio export / read_sql: {export_seconds / pandas_seconds:.2f}")
        for label, action in (
            ("raw table, csv", export("csv", "raw")),
            ("--epochs, csv", export("csv", "post", True)),
        ):
            print(f"  sweep export ({label}): {best_of(args.repeat, action):.3f} s")
        verdict = "under" if export_seconds < TARGET_SECONDS else "OVER"
        print(f"target: under {TARGET_SECONDS:.0f} s: {verdict}")
    return 0 if export_seconds < TARGET_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())
