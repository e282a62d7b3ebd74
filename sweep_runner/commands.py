"""The runner's verbs on the command line: run, resume, worker, retry."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sweeps.errors import InputError, unknown_study

if TYPE_CHECKING:
    from results.store import StorageUrl
    from sweeps.sweep_file import Sweep

LOG_FORMATS = ("rich", "plain", "jsonl")
# Each worker's run trains in a process of its own, with its own data pipeline threads.
WORKERS_PER_CORE = 4


@dataclass
class Launch:
    """How a study's workers are started on this machine.

    Args:
        checkpoints: the folder of checkpoint folders.
        data_dir: where local datasets live.
        max_trials: attempts in this invocation, across its workers.
        workers: worker processes.
        gpus: GPU ids to pin workers to (`CUDA_VISIBLE_DEVICES`), K per GPU.
        log_format: `rich`, `plain` or `jsonl`.
        report: the study's HTML page, rewritten as epochs arrive (`--report`).
        start_ahead: each worker starts its next run's child while a run trains.
    """

    checkpoints: Path
    data_dir: Path | None = None
    max_trials: int | None = None
    workers: int = 1
    gpus: list[str] | None = None
    log_format: str = "rich"
    report: Path | None = None
    start_ahead: bool = True


def add_parsers(
    commands: argparse._SubParsersAction,
    add_storage: Callable[[argparse.ArgumentParser], None],
) -> None:
    run = commands.add_parser("run", help="run a sweep file's study (creates or continues it)")
    run.add_argument("file", help="the sweep file (.toml), e.g. sweeps/quickstart.toml")
    run.add_argument("--new-study", default=None, metavar="NAME", help="a separate study of this name")
    _add_launch(run, add_storage)
    run.set_defaults(handler=_run)

    resume = commands.add_parser("resume", help="continue a study; needs no sweep file")
    resume.add_argument("study", help="the study's name (`sweep status` lists them)")
    _add_launch(resume, add_storage)
    resume.set_defaults(handler=_resume)

    worker = commands.add_parser("worker", help="join a study's workers from any machine")
    worker.add_argument("study", help="the study's name (`sweep status` lists them)")
    _add_launch(worker, add_storage)
    # What a cluster's scheduler starts: it waits for a database that is away (up to
    # the outage limit) instead of failing at once as the commands a person runs do.
    worker.set_defaults(handler=_resume, wait_for_database=True)

    retry = commands.add_parser("retry", help="hand failed or stopped runs out again (then `sweep resume`)")
    retry.add_argument("study", help="the study's name (`sweep status` lists them)")
    which = retry.add_mutually_exclusive_group(required=True)
    which.add_argument("--runs", default=None, help="comma-separated labels or run keys, e.g. 3A,5")
    which.add_argument("--failed", action="store_true", help="every failed run")
    add_storage(retry)
    retry.set_defaults(handler=_retry)


def _add_launch(parser: argparse.ArgumentParser, add_storage: Callable) -> None:
    add_storage(parser)
    parser.add_argument("--data-dir", default=None, help="folder with local datasets (cifar-10-python.tar.gz, …)")
    parser.add_argument("--checkpoints", default=None, help="checkpoint folder (default: beside the database)")
    parser.add_argument("--max-trials", type=_count, default=None, help="stop after N attempts (0: only create the study)")
    parser.add_argument("--workers", type=_positive, default=None, help="worker processes (default 1)")
    parser.add_argument("--gpus", default=None, help="GPU ids to pin workers to, e.g. 0,1,2,3")
    parser.add_argument("--trials-per-gpu", type=_positive, default=1, help="workers per GPU (default 1)")
    parser.add_argument(
        "--log-format", choices=LOG_FORMATS, default=None,
        help="rich (default on a terminal), plain, or jsonl for logs",
    )
    parser.add_argument(
        "--report", default=None, metavar="PATH",
        help="keep the study's HTML page (sweep report) current as epochs arrive",
    )
    parser.add_argument(
        "--no-start-ahead", dest="start_ahead", action="store_false",
        help="start each run's process only when its run is claimed: saves an idle "
        "process per worker (a few hundred MB), costs its imports (about 5 s) per run",
    )


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def _count(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"must be a whole number >= 0, got {text!r}")
    return int(text)


def launch_options(args: argparse.Namespace, url: str | StorageUrl) -> Launch:
    """How `sweep run`/`sweep resume` start their workers, from their flags, every flag
    checked before anything is written.

    Args:
        args: the parsed flags (`--data-dir`, `--gpus`, `--workers`, `--trials-per-gpu`,
            `--log-format`, `--checkpoints`, `--max-trials`, `--report`, `--start-ahead`).
        url: the storage URL.

    Raises:
        InputError: a bad flag, one line naming it and what is allowed.
    """
    from results.store import StorageUrl, check_writable
    from sweep_runner.storage import default_checkpoints

    # One line for a bad or read-only storage, before the folders derived from it.
    url = StorageUrl.parse(url)
    check_writable(url.url)
    data_dir = Path(args.data_dir) if args.data_dir else None
    if data_dir is not None and not data_dir.is_dir():
        raise InputError(f"--data-dir: {data_dir}: no such folder")
    gpus = None
    if args.gpus:
        gpus = [g.strip() for g in args.gpus.split(",")]
        if not all(g.isdigit() for g in gpus):
            raise InputError(f"--gpus: must be GPU ids separated by commas, e.g. 0,1, got {args.gpus!r}")
        if args.workers:
            raise InputError("--workers: not with --gpus: the workers are len(--gpus) × --trials-per-gpu")
        gpus = [g for g in gpus for _ in range(args.trials_per_gpu)]
    log_format = args.log_format or ("rich" if sys.stdout.isatty() else "plain")
    checkpoints = Path(args.checkpoints) if args.checkpoints else default_checkpoints(url)
    _check_checkpoints(checkpoints, url, given=bool(args.checkpoints))
    report = None
    if args.report is not None:
        from results.report import check_report_path

        report = check_report_path(args.report, url, flag="--report")
    return Launch(
        checkpoints=checkpoints,
        data_dir=data_dir, max_trials=args.max_trials,
        workers=len(gpus) if gpus else (args.workers or 1), gpus=gpus, log_format=log_format,
        report=report, start_ahead=args.start_ahead,
    )


def _check_checkpoints(checkpoints: Path, url: StorageUrl, *, given: bool) -> None:
    """The checkpoint folder must be a folder we can write (or create), before any run
    is registered: a worker that cannot write it would fail every run."""
    from results.report import refuse_folder, storage_files

    flag = "--checkpoints" if given else "--checkpoints (default: beside the database)"
    refuse_folder(checkpoints, flag=flag, protected=storage_files(url))


def _storage(args: argparse.Namespace) -> StorageUrl:
    """`--storage` (or its default), checked once: one line for a bad URL."""
    from results.store import StorageUrl
    from sweep_runner.storage import default_storage

    return StorageUrl.parse(args.storage or default_storage())


def _run(args: argparse.Namespace) -> int:
    from sweep_runner.storage import quiet_optuna
    from sweep_runner.study import prepare_study
    from sweeps.sweep_file import load_sweep

    sweep = load_sweep(args.file)
    url = _storage(args)
    launch = launch_options(args, url)
    check_workers(launch, sweep)
    _reach(url, wait=False)
    _say_starting(args.new_study or sweep.name, url, launch, _planned(sweep))
    quiet_optuna()
    opened = prepare_study(sweep, url, args.new_study)
    if _nothing_to_train(opened.name, url, launch, opened.sweep):
        return 0
    return launch_workers(opened.name, url, launch, opened.sweep.report.threshold)


def _resume(args: argparse.Namespace) -> int:
    from sweep_runner.storage import quiet_optuna
    from sweep_runner.study import load_study

    url = _storage(args)
    launch = launch_options(args, url)
    _reach(url, wait=getattr(args, "wait_for_database", False))
    _say_starting(args.study, url, launch, None)
    quiet_optuna()
    opened = load_study(args.study, url)
    check_workers(launch, opened.sweep)
    if _nothing_to_train(opened.name, url, launch, opened.sweep):
        return 0
    return launch_workers(opened.name, url, launch, opened.sweep.report.threshold)


def _reach(url: str, *, wait: bool) -> None:
    """A server database that refuses connections: one line and exit 2 at once, or,
    with `wait` (`sweep worker`), after waiting for it up to the outage limit.

    Raises:
        DatabaseUnreachable: it refused connections (past the limit, with `wait`).
    """
    from results.store import Timing, check_reachable
    from sweep_runner.outage import DatabaseAway, Outage

    if not wait:
        check_reachable(url)
        return
    limit = Timing.from_env().outage_limit
    try:
        Outage(limit, "sweep worker").call(lambda: check_reachable(url))
    except DatabaseAway:
        check_reachable(url)  # its one line, or it came back at the last moment


def _planned(sweep: Sweep) -> int:
    """The study's runs: its grid points and runs, or its search's trials."""
    return sweep.search.n_trials if sweep.search is not None else len(sweep.trials())


def _say_starting(study: str, url: StorageUrl, launch: Launch, runs: int | None) -> None:
    """A line in the first second: opening a study (Optuna's imports, a new database's
    tables) takes a few seconds before the progress has anything to show."""
    if launch.log_format == "jsonl":
        return  # a log of JSON lines only
    count = f" ({runs} run{'s' * (runs != 1)})" if runs is not None else ""
    print(f"{study}{count}: opening the study in {url.shown} …", flush=True)


def _nothing_to_train(study: str, url: StorageUrl, launch: Launch, sweep: Sweep) -> bool:
    """When every run of the study is done, says so (`nothing to train: 6/6 runs
    complete`) with the study's table, instead of starting workers that find nothing."""
    from results.store import ResultStore, is_final

    with ResultStore(url) as store:
        runs = store.runs(study)
    planned = _planned(sweep)
    done = [run for run in runs if is_final(run["state"])]
    if len(done) < planned or len(done) < len(runs):
        return False
    states: dict[str, int] = {}
    for run in done:
        states[run["state"]] = states.get(run["state"], 0) + 1
    how = "complete" if list(states) == ["complete"] else "done (" + ", ".join(f"{n} {s}" for s, n in states.items()) + ")"
    if launch.log_format == "jsonl":
        import json

        print(json.dumps({"event": "nothing_to_train", "study": study, "runs": len(done), "states": states}), flush=True)
        return True
    print(f"nothing to train: {len(done)}/{len(done)} runs {how}", flush=True)
    _print_table(url, study, sweep.report.threshold)
    if launch.report is not None:
        from results.report import LiveReport

        with ResultStore(url) as store:
            if LiveReport(store, study, launch.report).finish():
                sys.stderr.write(f"report: {launch.report}\n")
    return True


def _retry(args: argparse.Namespace) -> int:
    """`sweep retry`: resets the chosen runs, so that the next `sweep resume` trains them
    (from their checkpoints) whatever their retries; one line per problem, exit 2."""
    from results.store import ResultStore, RunState, safe_url
    from sweep_runner.groups import same_training

    url = _storage(args)
    with ResultStore(url, create=False) as store:
        runs = store.runs(args.study)
        if not runs:
            raise unknown_study(args.study, safe_url(store.url), store.studies())
        if args.failed:
            chosen = [r for r in runs if r["state"] == RunState.FAILED]
            if not chosen:
                print(f"{args.study}: no failed run")
                return 0
            named = len(chosen)
        else:
            named = len(named_runs := _chosen(args.study, runs, args.runs))
            chosen = same_training(named_runs, runs)
        reset = store.reset_runs([r["id"] for r in chosen])
    labels = ", ".join(r["label"] for r in chosen if r["id"] in reset)
    shared = " (with the runs that share their training)" if len(chosen) > named else ""
    print(f"{args.study}: reset {len(reset)} run(s){shared}: {labels}; "
          f"train them with `sweep resume {args.study} --storage {url}`")
    return 0


def _chosen(study: str, runs: list[dict], text: str) -> list[dict]:
    """The runs `--runs` names, by label or run key; InputError for any other."""
    from results.report import parse_runs, select_runs
    from results.store import RunState

    chosen = select_runs(parse_runs(text), runs, study)
    wrong = [f"{r['label']} is {r['state']}" for r in chosen if r["state"] not in (RunState.FAILED, RunState.STOPPED)]
    if wrong:
        raise InputError(
            f"--runs: {'; '.join(wrong)}: only failed or stopped runs are handed out again "
            "(a complete run is never trained twice; an interrupted one resumes by itself)"
        )
    return chosen


def check_workers(launch: Launch, sweep: Sweep) -> None:
    """Refuses more workers than the study has runs, or far more than this machine's
    cores (each worker trains in a process of its own).

    Raises:
        InputError: naming the flag, the count and the limit.
    """
    runs = sweep.search.n_trials if sweep.search is not None else len(sweep.trials())
    flag = "--gpus × --trials-per-gpu" if launch.gpus else "--workers"
    if launch.workers > runs:
        raise InputError(
            f"{flag}: {launch.workers} workers for {runs} run{'s' * (runs != 1)} of study "
            f"{sweep.name!r}: at most {runs} (one run per worker at a time)"
        )
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    limit = WORKERS_PER_CORE * cores
    if launch.workers > limit:
        raise InputError(
            f"{flag}: {launch.workers} workers on {cores} CPU core{'s' * (cores != 1)}: at most "
            f"{limit} ({WORKERS_PER_CORE} per core) on this machine; run more with `sweep worker` "
            "on other machines"
        )


def launch_workers(study: str, url: StorageUrl, launch: Launch, threshold: float) -> int:
    """Starts the workers, shows progress until they end, then prints the results table."""
    from results.report import LiveReport
    from results.store import ResultStore, RunState, Timing, is_unfinished
    from sweep_runner.outage import Outage, is_outage
    from sweep_runner.monitor import Monitor
    from trainer import EXIT_INTERRUPTED, Interrupts

    if launch.max_trials == 0:
        with ResultStore(url) as store:
            count = len(store.runs(study))
        sys.stderr.write(
            f"study {study}: {count} run(s) registered, none trained (--max-trials 0); "
            f"train them with `sweep worker {study} --storage {url}` on any machine\n"
        )
        return 0
    log_dir = launch.checkpoints / study
    log_dir.mkdir(parents=True, exist_ok=True)
    before = set(log_dir.iterdir())
    # The tasks of a Slurm job array share this folder: each logs to files of its own.
    from sweep_runner.slurm import current_task

    prefix = f"worker-{task}-" if (task := current_task()) else "worker-"
    workers = [
        _start_worker(study, url, launch, i, log_dir / f"{prefix}{i}.log")
        for i in range(launch.workers)
    ]

    def forward() -> None:
        for process in workers:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
        sys.stderr.write("stopping after the current epoch (Ctrl-C again to stop now)\n")

    def abort() -> None:
        for process in workers:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)

    interrupts = Interrupts(on_first=forward, on_second=abort)
    interrupts.install()
    store = ResultStore(url)
    live = LiveReport(store, study, launch.report) if launch.report else None
    # The workers wait out a database that goes away; so does the progress display.
    outage = Outage(Timing.from_env().outage_limit, "sweep")
    with Monitor(store, study, launch.log_format, checkpoints=launch.checkpoints) as monitor:
        while any(p.poll() is None for p in workers):
            try:
                monitor.poll()
                if live is not None:
                    live.poll()
            except Exception as error:
                if not is_outage(error):
                    raise
                outage.failed(error)
            else:
                outage.reached()
            time.sleep(0.5)
    codes = [p.returncode for p in workers]
    reported = live is not None and live.finish()
    if interrupts.stopping or EXIT_INTERRUPTED in codes:
        if reported:
            sys.stderr.write(f"report: {launch.report}\n")
        sys.stderr.write(f"interrupted: continue with `sweep resume {study} --storage {url}`\n")
        return EXIT_INTERRUPTED
    outage.call(lambda: _print_table(url, study, threshold))
    _say_moved_aside(log_dir, before)
    if reported:
        sys.stderr.write(f"report: {launch.report}\n")
    failed = [c for c in codes if c != 0]
    if failed:
        sys.stderr.write(f"{len(failed)} worker(s) ended with an error: see {log_dir}/worker-*.log\n")
    runs = outage.call(lambda: store.runs(study))
    unfinished = [r for r in runs if is_unfinished(r["state"])]
    for run in unfinished:
        reason = f": {run['failure_reason']}" if run["failure_reason"] else ""
        state = "interrupted (its worker stopped)" if run["state"] == RunState.RUNNING else run["state"]
        sys.stderr.write(f"run {run['label']}: {state}{reason}\n")
    if unfinished:
        from results.report import next_step

        states: dict[str, int] = {}
        for run in unfinished:
            state = "interrupted" if run["state"] == RunState.RUNNING else run["state"]
            states[state] = states.get(state, 0) + 1
        sys.stderr.write(f"{next_step(study, states, url)}\n")
    # Every run finished, even if a worker died on the way (another took its run over).
    # With --max-trials the runs beyond it are left on purpose: only a failure counts.
    if launch.max_trials is not None:
        unfinished = [r for r in unfinished if r["state"] not in (RunState.WAITING, RunState.STOPPED)]
    return 1 if unfinished else 0


def _say_moved_aside(log_dir: Path, before: set[Path]) -> None:
    """Names the checkpoint folders the workers moved aside in this invocation: left by
    another database (`*.foreign-*`), or claiming a completion the database lacks."""
    for path in sorted(set(log_dir.iterdir()) - before):
        if ".foreign-" in path.name:
            sys.stderr.write(f"checkpoint folder of another database moved aside, not used: {path}\n")
        elif ".unstored-" in path.name:
            sys.stderr.write(f"checkpoint folder whose epochs the database lacks moved aside: {path}\n")


def worker_command(study: str, url: str | StorageUrl, launch: Launch, index: int) -> tuple[list[str], dict[str, str]]:
    """The command line and environment of the `index`-th worker of a launch: its GPU
    (memory taken as needed), its share of `--max-trials`.

    Args:
        study: the study's name.
        url: the storage URL.
        launch: the launch's options.
        index: the worker's 0-based number.
    """
    env = dict(os.environ)
    if launch.gpus:
        env["CUDA_VISIBLE_DEVICES"] = launch.gpus[index]
        # Several workers share a card: take memory as needed, not the whole card.
        env["TF_FORCE_GPU_ALLOW_GROWTH"] = "true"
        env["XLA_PYTHON_CLIENT_PREALLOCATE"] = "false"
    command = [
        sys.executable, "-m", "sweep_runner.worker", study,
        "--storage", str(url), "--checkpoints", str(launch.checkpoints),
    ]
    if launch.data_dir:
        command += ["--data-dir", str(launch.data_dir)]
    if launch.max_trials is not None:
        share = launch.max_trials // launch.workers + (index < launch.max_trials % launch.workers)
        command += ["--max-trials", str(share)]
    if not launch.start_ahead:
        command.append("--no-start-ahead")
    command += ["--log-format", "jsonl" if launch.log_format == "jsonl" else "plain"]
    return command, env


def _start_worker(study: str, url: str, launch: Launch, index: int, log: Path) -> subprocess.Popen:
    from sweep_runner.child import die_with_parent  # imported here, not after the fork

    command, env = worker_command(study, url, launch, index)
    front = os.getpid()
    with open(log, "ab") as stream:
        return subprocess.Popen(
            command, env=env, stdout=stream, stderr=subprocess.STDOUT,
            # When the front process dies, even by SIGKILL, its workers get SIGTERM and
            # stop after their current epoch (checkpointed, the run put back for
            # resume) instead of training on unseen.
            preexec_fn=lambda: die_with_parent(front, signal.SIGTERM),
        )


def _print_table(url: StorageUrl, study: str, threshold: float) -> None:
    import results
    from results.report import print_fitted, shared_training_table, summary_table

    runs, epochs = results.load(url, study), results.load_epochs(url, study)
    if len(runs):
        # To a pipe or a log without COLUMNS, wide enough for the whole table.
        width = None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 240
        print_fitted(summary_table(runs, epochs, threshold=threshold), study=study, width=width)
        shared = shared_training_table(runs)
        if shared is not None:  # an m sweep: rows the same above, told apart by their averages
            print("Runs that shared one training (the same above): their averages, with the "
                  "stored and with recomputed BatchNorm statistics")
            print_fitted(shared, study=study, width=width)
