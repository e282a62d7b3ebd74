"""One attempt of one run, in its own process: train, and write every epoch as it ends.

A process per trial frees Keras' graphs and the GPU's memory after each run, and a
segfault or an out-of-memory kill here fails only this trial. The process imports
first and then reads its `ChildSpec` (one JSON line) from stdin, so that a worker can
start it while the previous run still trains (`sweep_runner.children`). The worker
reads the outcome from the JSON file named in the spec.

    python -m sweep_runner.child --parent-pid PID [--ready-fd FD] < SPEC-LINE
"""

from __future__ import annotations

import argparse
import ctypes
import errno
import importlib
import json
import logging
import math
import os
import shutil
import signal
import stat
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from trainer.interrupts import EXIT_INTERRUPTED, Interrupts

_PR_SET_PDEATHSIG = 1
#: Exit statuses that say why a child ended without an outcome file (a full disk may
#: not take even that): the worker names them instead of a bare status.
EXIT_INPUT_ERROR = 3
EXIT_DISK_FULL = 4
#: Below this many free bytes a folder's disk counts as full.
FULL_BELOW = 1 << 20
#: What a child imports before it has a run: Keras (TensorFlow), the trainer, the store.
PRELOAD = (
    "keras", "sklearn.datasets", "sklearn.model_selection", "trainer.augment",
    "trainer.checkpoint", "trainer.data", "trainer.device", "trainer.model",
    "trainer.optimizer", "trainer.train", "optuna", "results.store.result_store",
)


@dataclass
class ChildSpec:
    """What a child needs to train one attempt.

    Args:
        url: the database URL (results store and Optuna study).
        study: the study's name.
        run_id: the run's row in the results store.
        trial_id: the attempt's Optuna trial.
        config: the run's resolved configuration (RunConfig's JSON form).
        checkpoint_dir: the run's checkpoint folder (shared by all its attempts).
        data_dir: where local datasets live, if anywhere.
        outcome_path: where to write the outcome.
        log_path: the run's log: the child's stdout and stderr once it has its run.
        report: report val_acc to Optuna each epoch (single-objective studies).
        pruner: the pruner's settings, or None.
        instance: the study instance the run's checkpoint folder must belong to.
        members: runs that share this run's training (`RunConfig.training_key`),
            each `{"run_id", "trial_id", "config"}`; a `run_id` of None keeps its
            average (the group's checkpoint has it) without recording anything.
    """

    url: str
    study: str
    run_id: int
    trial_id: int
    config: dict[str, Any]
    checkpoint_dir: str
    data_dir: str | None
    outcome_path: str
    log_path: str
    report: bool = True
    pruner: dict[str, Any] | None = None
    instance: str | None = None
    members: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ChildSpec:
        return cls(**json.loads(text))


def die_with_parent(parent_pid: int | None, signum: int = signal.SIGKILL) -> None:
    """A child that outlived its killed worker would train on beside the worker that
    takes the run over: ask Linux to send it `signum` when its parent dies."""
    if parent_pid is None:
        return
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signum)
    except (OSError, AttributeError):
        return  # not Linux: the heartbeat still hands the run to one worker at a time
    if os.getppid() != parent_pid:  # the parent died before prctl
        os._exit(1)


def record_measurements(set_user_attr: Any, epochs: list[dict[str, Any]]) -> None:
    """Puts the run's last epoch's measurements (EMA validation, test, the kernels'
    norms, effective LR and rotation) and its best EMA val_acc into the trial's user
    attributes, under the epoch columns' names; None where not measured.

    Args:
        set_user_attr: sets one user attribute of the attempt's trial.
        epochs: the run's stored epochs.
    """
    from results.report.metrics import best_epoch
    from trainer import OPTIONAL_EPOCH_FIELDS

    if not epochs:
        return

    def plain(value: Any) -> float | None:
        return float(value) if value is not None and math.isfinite(value) else None

    for name in OPTIONAL_EPOCH_FIELDS:
        set_user_attr(name, plain(epochs[-1].get(name)))
    epoch, value = best_epoch(
        [e["epoch"] for e in epochs], [math.nan if e.get("val_acc_ema") is None else e["val_acc_ema"] for e in epochs]
    )
    set_user_attr("val_acc_ema_best", plain(value))
    set_user_attr("epoch_best_ema", epoch)



def _log_to(path: str) -> None:
    """From here on stdout and stderr go to the run's log, after what this process
    printed while it waited (the worker's nameless file, emptied so that the worker
    appends only what a child that died before this point printed)."""
    sys.stdout.flush()
    sys.stderr.flush()
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        if stat.S_ISREG(os.fstat(1).st_mode):
            os.write(descriptor, os.pread(1, os.fstat(1).st_size, 0))
            os.ftruncate(1, 0)
        os.dup2(descriptor, 1)
        os.dup2(descriptor, 2)
    finally:
        os.close(descriptor)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sweep_runner.child")
    parser.add_argument("--parent-pid", type=int, default=None, help="die with this process")
    parser.add_argument("--ready-fd", type=int, default=None, help="write a byte here once imported")
    args = parser.parse_args(argv)
    die_with_parent(args.parent_pid)
    handed: list[ChildSpec] = []

    def before_run() -> None:
        if not handed:  # Ctrl-C or SIGTERM while it waits for a run: nothing to stop
            os._exit(EXIT_INTERRUPTED)

    interrupts = Interrupts(on_first=before_run)
    interrupts.install()
    for name in PRELOAD:
        importlib.import_module(name)
    if args.ready_fd is not None:  # the worker starts the next run's child from now on
        os.write(args.ready_fd, b"1")
        os.close(args.ready_fd)
    line = sys.stdin.readline()
    if not line.strip():
        return 0  # its worker ended without a run for it
    handed.append(spec := ChildSpec.from_json(line))
    _log_to(spec.log_path)
    return train_attempt(spec, interrupts)


def train_attempt(spec: ChildSpec, interrupts: Interrupts) -> int:
    """Trains the attempt `spec` describes; writes its outcome; returns the exit status.

    Args:
        spec: the attempt.
        interrupts: the process's Ctrl-C counter: the first press stops after the epoch.
    """
    import optuna

    from results.store.result_store import ResultStore
    from sweep_runner.pruning import make_pruner, should_judge
    from sweep_runner.storage import optuna_storage, quiet_optuna
    from sweeps.config import RunConfig
    from sweeps.errors import InputError
    from trainer import train

    quiet_optuna()
    config = RunConfig.model_validate(spec.config)
    store = ResultStore(spec.url)
    storage = optuna_storage(spec.url)
    study = optuna.load_study(
        study_name=spec.study, storage=storage, pruner=make_pruner(spec.pruner)
    )
    pruned: list[int] = []

    def on_epoch(record) -> None:  # noqa: ANN001 - trainer.records.EpochRecord
        store.record_epoch(spec.run_id, record.as_dict())
        if spec.report and math.isfinite(record.val_acc):
            # What `Trial.report` and `Trial.should_prune` do, through the storage and
            # the pruner's public API: the trial was made by the worker, not by `ask`.
            storage.set_trial_intermediate_value(spec.trial_id, record.epoch, record.val_acc)
            if should_judge(spec.pruner, record.lr, config.learning_rate) and study.pruner.prune(
                study, storage.get_trial(spec.trial_id)
            ):
                pruned.append(record.epoch)

    def on_member_epoch(index: int, record) -> None:  # noqa: ANN001 - EpochRecord
        member = spec.members[index]
        if member["run_id"] is None:  # not claimed this time: its average only
            return
        store.record_epoch(member["run_id"], record.as_dict())
        if spec.report and math.isfinite(record.val_acc):
            storage.set_trial_intermediate_value(member["trial_id"], record.epoch, record.val_acc)

    started = time.monotonic()
    try:
        result = train(
            config, on_epoch, spec.checkpoint_dir,
            data_dir=spec.data_dir,
            should_stop=lambda: interrupts.stopping or bool(pruned),
            instance=spec.instance,
            members=[RunConfig.model_validate(member["config"]) for member in spec.members],
            on_member_epoch=on_member_epoch,
        )
    except InputError as error:
        # The input, not the machine: another attempt would fail alike.
        return _write_failure(spec, "input", str(error), EXIT_INPUT_ERROR)
    except Exception as error:
        # Not only OSError(ENOSPC): HDF5 reports a short write in its own words.
        if not disk_full(error, spec.checkpoint_dir):
            raise
        where = f" writing {error.filename}" if getattr(error, "filename", None) else ""
        reason = f"disk full{where}: No space left on device ({type(error).__name__}: {error})"
        return _write_failure(spec, "disk_full", reason.splitlines()[0], EXIT_DISK_FULL)
    # Through the storage's public API: the trial was made by the worker.
    for run_id, trial_id in [(spec.run_id, spec.trial_id)] + [(m["run_id"], m["trial_id"]) for m in spec.members]:
        if run_id is not None:
            record_measurements(
                lambda key, value, trial_id=trial_id: storage.set_trial_user_attr(trial_id, key, value),
                store.epochs(run_id),
            )
    outcome = {
        "status": "pruned" if pruned and result.status == "stopped" else result.status,
        "failure_reason": (
            f"pruned at epoch {pruned[0]}" if pruned and result.status == "stopped"
            else result.failure_reason
        ),
        "versions": result.versions,
        "seconds": time.monotonic() - started,
        "runs_trained": 1 + sum(m["run_id"] is not None for m in spec.members),
    }
    Path(spec.outcome_path).write_text(json.dumps(outcome), encoding="utf-8")
    store.close()
    return 0


def disk_full(error: BaseException | None, folder: str | Path) -> bool:
    """Whether an error (or, with None, a death) comes of a full disk under `folder`."""
    if isinstance(error, OSError) and error.errno == errno.ENOSPC:
        return True
    if error is not None and "No space left on device" in str(error):
        return True
    try:
        return shutil.disk_usage(folder).free < FULL_BELOW
    except OSError:
        return False


def _write_failure(spec: ChildSpec, kind: str, reason: str, status: int) -> int:
    """The whole one-line reason for the worker; on stderr (the run's log) as well,
    since a full disk may refuse the outcome file."""
    try:
        print(reason, file=sys.stderr, flush=True)
    except OSError:
        pass  # the log is on the full disk
    outcome = {"status": "failed", "failure_kind": kind, "failure_reason": reason}
    try:
        Path(spec.outcome_path).write_text(json.dumps(outcome), encoding="utf-8")
    except OSError:
        pass  # the exit status says it
    return status


def exit_now(status: int) -> None:
    """Ends the process without the interpreter's teardown, which for TensorFlow takes
    1–2 s a trial: everything that must last (epochs, outcome, checkpoints) is written
    and closed by now, so only Python's buffers are flushed first."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass  # a full disk or a closed log: the exit status still says how it ended
    os._exit(status)


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    exit_now(main())
