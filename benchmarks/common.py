"""Helpers shared by the runner's benchmarks (dispatch, concurrency, memory, chaos).

Each benchmark drives the real `sweep` command line, as a user would, on a database in
a temporary folder, then reads what happened from the results store. This module holds
what they share: the tests' tiny sweep files, starting the command, an audit of a
finished study (duplicates, lost and re-trained epochs), a psutil sampler of the
runner's process tree, and the final block of `name: value` lines.

Nothing here writes inside the repository.
"""

from __future__ import annotations

import math
import os
import re
import resource
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import psutil

REPO = Path(__file__).resolve().parents[1]
# Run as `python benchmarks/x.py`, sys.path[0] is benchmarks/: make the project and
# `testkit` (the tiny sweeps and the throw-away PostgreSQL the tests use too) importable
# even without an editable install.
if str(REPO) not in sys.path:
    sys.path.insert(1, str(REPO))

SWEEP = [sys.executable, "-m", "sweep_runner"]

# The tests' tiny sweep files (testkit/tiny_sweeps.py): ResNet11 on scikit-learn's
# bundled digits (16×16), no download, a constant α for `epochs` epochs.
from testkit.tiny_sweeps import grid_values, sweep_text  # noqa: E402, F401 - grid_values for concurrency.py


# -- sweep files and the command line ---------------------------------------------------


def write_sweep(
    folder: Path,
    name: str,
    *,
    points: int,
    epochs: int,
    train_size: int = 256,
    validation_size: int = 64,
    batch_size: int = 64,
) -> Path:
    """A sweep file of `points` tiny runs (a λ grid) of `epochs` epochs each."""
    values = ", ".join(repr(v) for v in grid_values(points))
    path = folder / f"{name}.toml"
    path.write_text(
        sweep_text(
            name, epochs=epochs, space=f"weight_decay = [{values}]", schedule=False,
            train_size=train_size, validation_size=validation_size, batch_size=batch_size,
        ),
        encoding="utf-8",
    )
    return path


def postgres_base(stack: ExitStack) -> str | None:
    """A PostgreSQL server's base URL: $SWEEP_TEST_POSTGRES_URL, else a private cluster
    that `stack` stops; None (the reason printed) when there can be none."""
    base = os.environ.get("SWEEP_TEST_POSTGRES_URL")
    if base:
        return base
    from testkit.postgres import missing_reason, postgres_cluster

    if missing_reason():
        print(f"{Path(sys.argv[0]).name}: {missing_reason()}", file=sys.stderr)
        return None
    return stack.enter_context(postgres_cluster())


def sqlite_url(folder: Path, name: str = "sweeps.db") -> str:
    return f"sqlite:///{folder / name}"


def sweep_env() -> dict[str, str]:
    """The environment of a sweep: unbuffered, TensorFlow's start-up chatter off."""
    return {**os.environ, "PYTHONUNBUFFERED": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}


def sweep_command(file: Path, url: str, workers: int, *extra: str) -> list[str]:
    return [
        *SWEEP, "run", str(file), "--storage", url, "--workers", str(workers),
        "--log-format", "jsonl", *extra,
    ]


@dataclass
class Finished:
    """A `sweep run` that ran to its end."""

    returncode: int
    seconds: float
    stdout: str
    stderr: str


def run_sweep(
    file: Path, url: str, *, workers: int, cwd: Path, timeout: float = 900.0, extra: Sequence[str] = ()
) -> Finished:
    """Runs `sweep run FILE` to completion; its exit status, wall time and output."""
    started = time.perf_counter()
    done = subprocess.run(
        sweep_command(file, url, workers, *extra), cwd=cwd, env=sweep_env(),
        capture_output=True, text=True, timeout=timeout, check=False,
    )
    return Finished(done.returncode, time.perf_counter() - started, done.stdout, done.stderr)


def start_sweep(file: Path, url: str, *, workers: int, cwd: Path, log: Path) -> subprocess.Popen:
    """Starts `sweep run FILE` in a session of its own (killable as a group); its
    output goes to `log`, so that an unread pipe never stalls it."""
    with open(log, "ab") as stream:
        return subprocess.Popen(
            sweep_command(file, url, workers), cwd=cwd, env=sweep_env(),
            stdout=stream, stderr=subprocess.STDOUT, start_new_session=True,
        )


# -- what a finished study holds ----------------------------------------------------------


@dataclass
class Audit:
    """Counts over a study's runs, epochs and Optuna trials.

    Attributes:
        runs: runs registered.
        complete: runs in state `complete`.
        multi_attempt_runs: runs claimed more than once (`attempts > 1`).
        retrained_runs: runs with an epoch trained more than once.
        epochs_trained_twice: Σ (trainings − 1) over all epochs.
        epochs_lost: epochs missing from 1..epochs of a complete run, or below the
            last recorded epoch of a run that did not complete (a gap); a run that
            simply has not got that far loses nothing.
        optuna_complete_duplicates: run keys with more than one COMPLETE Optuna trial.
        optuna_trials: Optuna trials in the study.
        duplicate_runs: runs trained more than once in any way: claimed twice, an epoch
            trained twice, or more than one COMPLETE Optuna trial (no run of a sweep
            without failures should be any of these).
        states: the runs' states.
    """

    runs: int = 0
    complete: int = 0
    multi_attempt_runs: int = 0
    retrained_runs: int = 0
    epochs_trained_twice: int = 0
    epochs_lost: int = 0
    optuna_complete_duplicates: int = 0
    optuna_trials: int = 0
    duplicate_runs: int = 0
    states: dict[str, int] = field(default_factory=dict)


def audit(url: str, study: str, epochs: int) -> Audit:
    """Reads a study back from the results store and from Optuna."""
    import optuna

    from results.store.result_store import ResultStore

    result = Audit()
    twice: set[str] = set()
    with ResultStore(url, create=False) as store:
        for run in store.runs(study):
            if run["attempts"] > 1:
                twice.add(run["run_key"])
            result.runs += 1
            result.states[run["state"]] = result.states.get(run["state"], 0) + 1
            result.complete += run["state"] == "complete"
            result.multi_attempt_runs += run["attempts"] > 1
            rows = store.epochs(run["id"])
            trained = {row["epoch"] for row in rows}
            reach = epochs if run["state"] == "complete" else max(trained, default=0)
            result.epochs_lost += len(set(range(1, reach + 1)) - trained)
            extra = sum(max(0, row["trainings"] - 1) for row in rows)
            result.epochs_trained_twice += extra
            result.retrained_runs += extra > 0
            if extra:
                twice.add(run["run_key"])
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    trials = optuna.load_study(study_name=study, storage=url).get_trials(deepcopy=False)
    result.optuna_trials = len(trials)
    per_key: dict[str, int] = {}
    for trial in trials:
        if trial.state == optuna.trial.TrialState.COMPLETE:
            key = trial.user_attrs.get("run_key", f"#{trial.number}")
            per_key[key] = per_key.get(key, 0) + 1
    result.optuna_complete_duplicates = sum(n > 1 for n in per_key.values())
    twice |= {key for key, n in per_key.items() if n > 1}
    result.duplicate_runs = len(twice)
    return result


LOCKED = re.compile(r"is locked")


def count_lock_errors(files: Iterable[Path], texts: Iterable[str] = ()) -> int:
    """Lines saying SQLite's "database is locked" (or "table is locked") in the
    workers' and children's logs and in the command's own output."""
    count = 0
    for path in files:
        try:
            text = path.read_text(errors="replace")
        except OSError:
            continue
        count += sum(1 for line in text.splitlines() if LOCKED.search(line))
    for text in texts:
        count += sum(1 for line in text.splitlines() if LOCKED.search(line))
    return count


def study_logs(checkpoints: Path, study: str) -> list[Path]:
    """The workers' logs and every run's training log of a study."""
    folder = checkpoints / study
    return sorted(folder.glob("worker-*.log")) + sorted(folder.glob("*/train.log"))


# -- processes, through psutil -----------------------------------------------------------


def memory_kb(pid: int) -> int | None:
    """The resident set of a live process, in KiB; None once it is gone."""
    try:
        return psutil.Process(pid).memory_info().rss // 1024
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def own_peak_kb() -> int:
    """This process' peak resident set, in KiB (Linux reports `ru_maxrss` in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _kind(process: psutil.Process) -> str:
    try:
        argv = process.cmdline()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return "gone"
    if not argv:  # exiting: the kernel has let go of its memory, command line included
        return "gone"
    if "sweep_runner.child" in argv:
        return "child"
    if "sweep_runner.worker" in argv:
        return "worker"
    return "other"


@dataclass
class Seen:
    """One process of the tree as the sampler saw it (times from time.perf_counter).

    `peak_kb` is the largest resident set sampled: a spike shorter than the interval
    between two samples is missed.
    """

    pid: int
    kind: str
    parent: int
    first: float
    last: float
    peak_kb: int = 0


class TreeSampler:
    """Polls a process tree through psutil in a thread: each process' lifetime and
    memory, and each worker's resident set sampled right after each of its children
    ended.

    The worker starts its children itself, so neither `os.wait4` nor `RUSAGE_CHILDREN`
    of this process sees them; psutil does. Lifetimes are accurate to one interval.

    Args:
        root: the pid of the `sweep run` process.
        interval: seconds between samples.
    """

    def __init__(self, root: int, interval: float = 0.1) -> None:
        self.root = root
        self.interval = interval
        self.seen: dict[int, Seen] = {}
        # (worker pid, the child that just ended, worker RSS KiB after it ended)
        self.after_child: list[tuple[int, int, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def of_kind(self, kind: str) -> list[Seen]:
        return sorted((s for s in self.seen.values() if s.kind == kind), key=lambda s: s.first)

    def _tree(self) -> list[psutil.Process]:
        try:
            root = psutil.Process(self.root)
            return [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def _loop(self) -> None:
        alive: set[int] = set()
        while not self._stop.is_set():
            now = time.perf_counter()
            tree = self._tree()
            for process in tree:
                self.sample(process, now)
            pids = {process.pid for process in tree}
            for pid in alive - pids:
                self.ended(pid)
            alive = pids
            self._stop.wait(self.interval)

    def sample(self, process: psutil.Process, now: float) -> None:
        """Records one look at a process of the tree: its kind, parent and peak memory."""
        try:
            rss_kb = process.memory_info().rss // 1024
            parent = process.ppid()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            return
        kind = _kind(process)  # every time: between fork and exec a child still looks like its worker
        seen = self.seen.get(process.pid)
        if seen is None:
            seen = self.seen[process.pid] = Seen(process.pid, kind, parent, now, now)
        elif kind != "gone":
            seen.kind = kind
        seen.last = now
        seen.peak_kb = max(seen.peak_kb, rss_kb)

    def ended(self, pid: int) -> None:
        """Notes a process that left the tree (a trial's child: its worker's memory then)."""
        seen = self.seen.get(pid)
        if seen is None or seen.kind != "child":
            return
        rss_kb = memory_kb(seen.parent)
        if rss_kb is not None:
            self.after_child.append((seen.parent, pid, rss_kb))


# -- output ------------------------------------------------------------------------------


def fmt(value: Any) -> str:
    """A figure as it goes into the results file."""
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return f"{value:.4g}" if abs(value) < 1e5 else f"{value:.0f}"
    return str(value)


def print_block(title: str, figures: dict[str, Any]) -> None:
    """The final block: `name: value` lines, easy to paste into a results file."""
    print(f"\n# {title}")
    for name, value in figures.items():
        print(f"{name}: {fmt(value)}")
    sys.stdout.flush()


def ratio(a: float, b: float) -> float:
    return a / b if b else float("inf")
