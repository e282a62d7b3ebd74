"""`sweep submit FILE|STUDY --workers N`: start the study, then its workers on Slurm as
one job array (`sweep_runner.slurm`); `--wait` follows the study until it is done."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from sweeps.errors import InputError

if TYPE_CHECKING:  # imported where used: `sweep submit --dry-run` needs no Optuna
    from results.store import StorageUrl
    from sweep_runner.slurm import JobArray
    from sweep_runner.study import OpenStudy
    from sweeps.sweep_file import Sweep

#: Seconds between two looks at the array's tasks while waiting.
SQUEUE_SECONDS = 5.0
#: How long `--wait` goes on while `squeue` fails (slurmctld restarting) before it gives up.
SQUEUE_PATIENCE = 300.0


def add_parser(
    commands: argparse._SubParsersAction,
    add_storage: Callable[[argparse.ArgumentParser], None],
) -> None:
    """`sweep submit` and its flags."""
    from sweep_runner.commands import LOG_FORMATS, _positive

    submit = commands.add_parser(
        "submit", help="start a study and its workers on Slurm (one job array of `sweep worker`)",
    )
    submit.add_argument("target", metavar="FILE|STUDY", help="a sweep file, or the name of a started study")
    submit.add_argument("--workers", type=_positive, required=True, help="array tasks, one worker each")
    submit.add_argument("--partition", default=None, help="Slurm partition (default: the cluster's)")
    submit.add_argument("--time", default=None, help="time limit per task, e.g. 24:00:00; "
                        "120 s before it a task checkpoints and requeues itself")
    submit.add_argument("--gpus-per-worker", type=_count, default=None, help="GPUs per task (--gres=gpu:N)")
    submit.add_argument("--cpus-per-worker", type=_positive, default=None, help="CPU cores per task")
    submit.add_argument("--mem", default=None, help="memory per task, e.g. 32G")
    submit.add_argument(
        "--sbatch", action="append", default=[], metavar="OPTION",
        help="another sbatch option, repeatable: --sbatch=--account=myproject",
    )
    add_storage(submit)
    submit.add_argument("--checkpoints", default=None,
                        help="checkpoint folder every node mounts at this path (default: beside the database)")
    submit.add_argument("--data-dir", default=None, help="folder with local datasets, as the nodes see it")
    submit.add_argument("--no-start-ahead", dest="start_ahead", action="store_false",
                        help="each worker starts a run's process only when it is claimed")
    submit.add_argument("--dry-run", action="store_true", help="print the job script; submit nothing")
    submit.add_argument("--wait", action="store_true",
                        help="show the study's progress until it is done (exit 0) or the array ends with runs left")
    submit.add_argument("--log-format", choices=LOG_FORMATS, default=None,
                        help="progress with --wait: rich (default on a terminal), plain or jsonl")
    submit.set_defaults(handler=submit_command)


def _count(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"must be a whole number >= 0, got {text!r}")
    return int(text)


def _is_file(target: str) -> bool:
    return target.endswith(".toml") or os.sep in target or Path(target).is_file()


def submit_command(args: argparse.Namespace) -> int:
    """Checks every flag, starts the study, writes the job script and submits it;
    with `--wait`, follows the study to its end.

    Args:
        args: the parsed `sweep submit` flags.

    Returns:
        The exit status: 0 submitted (with `--wait`: the study complete), 1 refused by
        sbatch or ended with runs left, 130 waiting stopped by Ctrl-C.

    Raises:
        InputError: a bad flag, file, study, storage or folder, or no sbatch (exit 2),
            before anything is written or submitted.
    """
    from results.store import FINAL_STATES, StorageUrl
    from sweep_runner.slurm import find_sbatch
    from sweep_runner.storage import default_storage

    url = StorageUrl.parse(args.storage or default_storage())
    job, sweep = _job_array(args, url)
    if sweep is not None:
        _check_workers(args.workers, sweep)
    elif args.dry_run:  # a started study: its runs bound the workers
        started = _start(args.target, None, url)
        started.store.close()
        _check_workers(args.workers, started.sweep)
    if args.dry_run:
        sys.stdout.write(job.script())
        return 0
    sbatch = find_sbatch()
    opened = _start(args.target, sweep, url)
    _check_workers(args.workers, opened.sweep)
    threshold = opened.sweep.report.threshold
    done = all(run["state"] in FINAL_STATES for run in opened.store.runs(job.study))
    opened.store.close()
    if done:
        sys.stderr.write(f"study {job.study}: every run is done already; nothing submitted\n")
        return 0
    script = _write_script(job)
    try:
        from sweep_runner.slurm import submit

        array = submit(script, sbatch)
    except RuntimeError as error:
        sys.stderr.write(f"{error}\n")
        return 1
    sys.stderr.write(
        f"study {job.study}: job array {array} submitted ({args.workers} worker(s)); script {script}; "
        f"follow it with `sweep status {job.study} --storage {url}`\n"
    )
    if not args.wait:
        return 0
    log_format = args.log_format or ("rich" if sys.stdout.isatty() else "plain")
    return wait(job.study, url, array, log_format, threshold)


def _job_array(args: argparse.Namespace, url: StorageUrl) -> tuple[JobArray, Sweep | None]:
    """The job array the flags ask for, every flag checked, and the sweep file's sweep
    (None for a started study).

    Raises:
        InputError: a bad flag, sweep file, storage or folder.
    """
    from results.store import check_writable
    from sweep_runner.commands import _check_checkpoints
    from sweep_runner.slurm import JobArray
    from sweep_runner.storage import default_checkpoints

    check_writable(url.url)
    checkpoints = Path(args.checkpoints) if args.checkpoints else default_checkpoints(url)
    _check_checkpoints(checkpoints, url, given=bool(args.checkpoints))
    data_dir = Path(args.data_dir) if args.data_dir else None
    if data_dir is not None and not data_dir.is_dir():
        raise InputError(f"--data-dir: {data_dir}: no such folder")
    sweep, name = _target(args.target, url)
    job = JobArray(
        study=name, storage=url.text, checkpoints=checkpoints.resolve(), workers=args.workers,
        python=sys.executable, workdir=Path.cwd(), partition=args.partition, time=args.time,
        gpus_per_worker=args.gpus_per_worker, cpus_per_worker=args.cpus_per_worker, mem=args.mem,
        extra=list(args.sbatch), data_dir=data_dir.resolve() if data_dir else None,
        start_ahead=args.start_ahead,
    )
    job.check()
    return job, sweep


def _target(target: str, url: StorageUrl) -> tuple[Sweep | None, str]:
    """The sweep file's (sweep, study name), or (None, name) for a started study."""
    from sweeps.sweep_file import load_sweep

    if _is_file(target):
        sweep = load_sweep(target)
        return sweep, sweep.name
    from sweeps.sweep_file import name_problem

    if problem := name_problem(target):
        raise InputError(f"{target!r}: neither a sweep file nor a study name: {problem}")
    return None, target


def _start(target: str, sweep: Sweep | None, url: StorageUrl) -> OpenStudy:
    """The study, created or extended from its file (as `sweep run --max-trials 0`), or
    the started study of that name."""
    from sweep_runner.storage import quiet_optuna
    from sweep_runner.study import load_study, prepare_study

    quiet_optuna()
    if sweep is not None:
        return prepare_study(sweep, url)
    return load_study(target, url)


def _check_workers(workers: int, sweep: Sweep) -> None:
    """More array tasks than runs would only queue idle workers; local cores do not
    matter (the tasks run on the cluster's nodes)."""
    runs = sweep.search.n_trials if sweep.search is not None else len(sweep.trials())
    if workers > runs:
        raise InputError(
            f"--workers: {workers} workers for {runs} run{'s' * (runs != 1)} of study {sweep.name!r}: "
            f"at most {runs} (one run per worker at a time)"
        )


def _write_script(job: JobArray) -> Path:
    """The job script beside the workers' logs (mode 0600: it holds the storage URL)."""
    job.log_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
    path = job.log_dir / f"submit-{stamp}.sbatch"
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
        stream.write(job.script())
    return path


def wait(study: str, url: StorageUrl, array: str, log_format: str, threshold: float) -> int:
    """Shows the study's progress until every run is done (0), or the array has no task
    left to run one while runs are left (1, with Slurm's reason), as `sweep run` does.

    Ctrl-C stops waiting only: the array goes on (130).
    """
    from results.store import FINAL_STATES, ResultStore
    from sweep_runner.commands import _print_table
    from sweep_runner.monitor import Monitor
    from sweep_runner.slurm import array_tasks, describe_end

    store = ResultStore(url)
    ended: str | None = None
    last_look = -SQUEUE_SECONDS
    reached = time.monotonic()
    try:
        with Monitor(store, study, log_format) as monitor:
            while True:
                monitor.poll()
                if all(run["state"] in FINAL_STATES for run in store.runs(study)):
                    break
                if time.monotonic() - last_look >= SQUEUE_SECONDS:
                    last_look = time.monotonic()
                    tasks = array_tasks(array)
                    if tasks is not None:
                        reached = last_look
                        if all(task.ended for task in tasks):
                            # The last task may have finished the study since the look above.
                            if not all(run["state"] in FINAL_STATES for run in store.runs(study)):
                                ended = describe_end(array, tasks)
                            break
                    elif last_look - reached > SQUEUE_PATIENCE:
                        ended = f"squeue has not answered for {SQUEUE_PATIENCE:.0f} s: stopped waiting"
                        break
                time.sleep(1.0)
    except KeyboardInterrupt:
        sys.stderr.write(f"stopped waiting; job array {array} goes on (`scancel {array}` stops it)\n")
        return 130
    finally:
        runs = store.runs(study)
        store.close()
    if ended is None:
        _print_table(url, study, threshold)
        return 0
    left = [run for run in runs if run["state"] not in FINAL_STATES]
    sys.stderr.write(f"{ended}, with {len(left)} run(s) of study {study} not done:\n")
    for run in left:
        reason = f": {run['failure_reason']}" if run["failure_reason"] else ""
        sys.stderr.write(f"run {run['label']}: {run['state']}{reason}\n")
    return 1
