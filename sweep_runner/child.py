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
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sweep_runner.outcome import FailureKind, Outcome
from trainer import EXIT_INTERRUPTED, Interrupts, preload

_PR_SET_PDEATHSIG = 1
#: Exit statuses that say why a child ended without an outcome file (a full disk may
#: not take even that): the worker names them instead of a bare status.
EXIT_INPUT_ERROR = 3
EXIT_DISK_FULL = 4
#: The attempt lost its claim (another worker took the run over): it wrote nothing
#: more for the run and stopped at once.
EXIT_LOST_CLAIM = 5
#: The database stayed away past the outage limit: the attempt stopped training.
EXIT_DATABASE_AWAY = 6
#: Below this many free bytes a folder's disk counts as full.
FULL_BELOW = 1 << 20
#: What a child imports before it has a run, besides the trainer's (`trainer.preload`)
#: and the store's.
PRELOAD = ("optuna",)


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
        attempt: the claim's token: every write for the run is conditional on it.
        outage_limit: seconds to train on while the database is away.
        members: runs that share this run's training (`RunConfig.training_key`),
            each `{"run_id", "trial_id", "attempt", "config"}` (its own claim); a `run_id` of None keeps its
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
    attempt: int | None = None
    outage_limit: float = 300.0
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
    from results.report import best_epoch
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
    preload()
    for name in PRELOAD:
        importlib.import_module(name)
    from results.store import OptunaStudy, ResultStore  # noqa: F401 - SQLAlchemy now, not with the run
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

    Every write for the run is fenced by the claim (`spec.attempt`): the epoch rows and
    the outcome in the store, the checkpoint made current and the outcome on disk. One
    that finds the run taken over stops the attempt at once (`EXIT_LOST_CLAIM`).

    Args:
        spec: the attempt.
        interrupts: the process's Ctrl-C counter: the first press stops after the epoch.
    """
    from results.store import LostClaim
    from sweep_runner.outage import DatabaseAway

    try:
        return _train_attempt(spec, interrupts)
    except LostClaim as error:
        print(f"{error}: this attempt stops", file=sys.stderr, flush=True)
        return EXIT_LOST_CLAIM
    except DatabaseAway as error:
        print(f"{error}: this attempt stops; its run is taken over once its claim expires",
              file=sys.stderr, flush=True)
        return EXIT_DATABASE_AWAY


def _train_attempt(spec: ChildSpec, interrupts: Interrupts) -> int:
    from results.store import OptunaStudy, ResultStore
    from sweep_runner.outage import Outage
    from sweep_runner.pruning import make_pruner
    from sweep_runner.phases import write_phase
    from sweep_runner.storage import optuna_storage, quiet_optuna
    from sweeps.config import RunConfig
    from sweeps.errors import InputError
    from trainer import train

    quiet_optuna()
    config = RunConfig.model_validate(spec.config)
    outage = Outage(spec.outage_limit, f"run {spec.run_id}")  # a database away now is waited for
    store = outage.call(lambda: ResultStore(spec.url))
    study = outage.call(lambda: OptunaStudy.load(
        optuna_storage(store.storage), spec.study, pruner=make_pruner(spec.pruner)
    ))
    # The trial the worker made for this attempt, as Optuna's own `Trial`.
    # (Optuna's `Trial` reads the trial and the sampler's search space when it is made.)
    writer = _FencedWriter(spec, store, outage.call(lambda: study.handle(spec.trial_id)), config, outage)

    def on_member_epoch(index: int, record) -> None:  # noqa: ANN001 - EpochRecord
        member = spec.members[index]
        if member["run_id"] is None:  # not claimed this time: its average only
            return
        # Fenced by the member's own claim: a member taken over stops the group's child.
        outage.call(lambda: store.record_epoch(member["run_id"], record.as_dict(), attempt=member["attempt"]))
        if spec.report and math.isfinite(record.val_acc):
            outage.call(lambda: study.handle(member["trial_id"]).report(record.val_acc, record.epoch))

    started = time.monotonic()
    try:
        result = train(
            config, writer.on_epoch, spec.checkpoint_dir,
            data_dir=spec.data_dir,
            should_stop=lambda: interrupts.stopping or bool(writer.pruned),
            instance=spec.instance,
            fence=writer.fence,
            on_phase=lambda phase: write_phase(spec.checkpoint_dir, phase),
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
    writer.record_measurements()
    for member in spec.members:  # the group's other runs (check first, write second)
        if member["run_id"] is not None and outage.call(lambda: store.holds(member["run_id"], member["attempt"])):
            outage.call(lambda: record_measurements(
                study.handle(member["trial_id"]).set_user_attr, store.epochs(member["run_id"])
            ))
    pruned = writer.pruned
    outcome = Outcome(
        status="pruned" if pruned and result.status == "stopped" else result.status,
        failure_reason=(
            f"pruned at epoch {pruned[0]}" if pruned and result.status == "stopped"
            else result.failure_reason
        ),
        versions=result.versions,
        seconds=time.monotonic() - started,
        runs_trained=1 + sum(m["run_id"] is not None for m in spec.members),
    )
    Path(spec.outcome_path).write_text(outcome.model_dump_json(), encoding="utf-8")
    store.close()
    return 0


class _FencedWriter:
    """An attempt's writes for its run, each conditional on its claim; epochs that the
    database cannot take now (an outage) wait here and are written when it is back."""

    def __init__(self, spec: ChildSpec, store: Any, trial: Any, config: Any, outage: Any) -> None:
        self.spec, self.store, self.trial = spec, store, trial
        self.config, self.outage = config, outage
        self.pending: list[dict[str, Any]] = []
        self.pruned: list[int] = []
        self.last_epoch = 0

    def _flush(self) -> bool:
        """Writes the epochs that wait; False while the database is away.

        Raises:
            LostClaim: the run was taken over.
        """
        from sweep_runner.outage import is_outage

        while self.pending:
            try:
                self.store.record_epoch(self.spec.run_id, self.pending[0], attempt=self.spec.attempt)
            except Exception as error:
                if not is_outage(error):
                    raise
                self.outage.failed(error)
                return False
            self.outage.reached()
            self.pending.pop(0)
        return True

    def on_epoch(self, record: Any) -> None:  # trainer.records.EpochRecord
        """The epoch's row (fenced), then its value for Optuna's pruner: check first
        (the fenced row), write second."""
        from sweep_runner.outage import is_outage
        from sweep_runner.pruning import should_judge

        self.pending.append(record.as_dict())
        self.last_epoch = record.epoch
        if not self._flush() or not (self.spec.report and math.isfinite(record.val_acc)):
            return
        try:
            self.trial.report(record.val_acc, record.epoch)
            if should_judge(self.spec.pruner, record.lr, self.config.learning_rate) and self.trial.should_prune():
                self.pruned.append(record.epoch)
        except Exception as error:
            if not is_outage(error):
                raise
            self.outage.failed(error)  # the curve misses a point; the epochs are kept

    @contextmanager
    def fence(self, end: bool) -> Iterator[bool]:
        """Holds the run while the trainer makes a checkpoint current or writes the
        outcome. While the database is away an epoch's checkpoint is skipped (it must
        not run ahead of the stored epochs); the run's end waits for the database.

        Raises:
            LostClaim: the run was taken over.
            DatabaseAway: the run's end waited past the outage limit.
        """
        from sweep_runner.outage import is_outage

        if self.spec.attempt is None:
            yield True
            return
        entered = False
        while True:
            try:
                if self._flush():
                    with self.store.fenced(self.spec.run_id, self.spec.attempt):
                        entered = True
                        yield True
                        # In the run's log, for whoever audits the attempts' writes.
                        print(f"attempt {self.spec.attempt}: {'outcome' if end else 'checkpoint'} of "
                              f"epoch {self.last_epoch} written", file=sys.stderr, flush=True)
                    return
            except Exception as error:
                if not is_outage(error):
                    raise
                self.outage.failed(error)
                if entered:
                    return  # written; only the hold's COMMIT was lost with the connection
            if not end:
                yield False
                return
            self.outage.pause()

    def record_measurements(self) -> None:
        """The run's last measurements into the trial's user attributes, once the claim
        is found still held (check first, write second)."""
        from sweep_runner.outage import is_outage

        try:
            if self.spec.attempt is not None and not self.store.holds(self.spec.run_id, self.spec.attempt):
                from results.store import LostClaim

                raise LostClaim(self.spec.run_id, self.spec.attempt)
            record_measurements(self.trial.set_user_attr, self.store.epochs(self.spec.run_id))
        except Exception as error:
            if not is_outage(error):
                raise
            self.outage.failed(error)  # the trial's summary attributes only


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


def _write_failure(spec: ChildSpec, kind: FailureKind, reason: str, status: int) -> int:
    """The whole one-line reason for the worker; on stderr (the run's log) as well,
    since a full disk may refuse the outcome file."""
    try:
        print(reason, file=sys.stderr, flush=True)
    except OSError:
        pass  # the log is on the full disk
    try:
        Path(spec.outcome_path).write_text(Outcome.failed(reason, kind).model_dump_json(), encoding="utf-8")
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
