"""One attempt of one run, in its own process: train, and write every epoch as it ends.

A process per trial frees Keras' graphs and the GPU's memory after each run, and a
segfault or an out-of-memory kill here fails only this trial. The worker that started
this process reads the outcome from the JSON file named in the spec.

    python -m sweep_runner.child SPEC.json
"""

from __future__ import annotations

import ctypes
import json
import math
import os
import signal
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sweep_runner.signals import Interrupts

_PR_SET_PDEATHSIG = 1


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
        report: report val_acc to Optuna each epoch (single-objective studies).
        pruner: the pruner's settings, or None.
        parent_pid: the worker's pid: the child dies with it.
    """

    url: str
    study: str
    run_id: int
    trial_id: int
    config: dict[str, Any]
    checkpoint_dir: str
    data_dir: str | None
    outcome_path: str
    report: bool = True
    pruner: dict[str, Any] | None = None
    parent_pid: int | None = None

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self)), encoding="utf-8")

    @classmethod
    def read(cls, path: Path) -> ChildSpec:
        return cls(**json.loads(path.read_text(encoding="utf-8")))


def die_with_parent(parent_pid: int | None) -> None:
    """A child that outlived its killed worker would train on beside the worker that
    takes the run over: ask Linux to kill it with its parent."""
    if parent_pid is None:
        return
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        return  # not Linux: the heartbeat still hands the run to one worker at a time
    if os.getppid() != parent_pid:  # the parent died before prctl
        os._exit(1)


def main(spec_path: str) -> int:
    spec = ChildSpec.read(Path(spec_path))
    die_with_parent(spec.parent_pid)
    interrupts = Interrupts()
    interrupts.install()

    import optuna

    from results.store import ResultStore
    from sweep_runner.pruning import make_pruner, should_judge
    from sweep_runner.storage import optuna_storage, quiet_optuna
    from sweeps.config import RunConfig
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

    started = time.monotonic()
    result = train(
        config, on_epoch, spec.checkpoint_dir,
        data_dir=spec.data_dir,
        should_stop=lambda: interrupts.stopping or bool(pruned),
    )
    outcome = {
        "status": "pruned" if pruned and result.status == "stopped" else result.status,
        "failure_reason": (
            f"pruned at epoch {pruned[0]}" if pruned and result.status == "stopped"
            else result.failure_reason
        ),
        "versions": result.versions,
        "seconds": time.monotonic() - started,
    }
    Path(spec.outcome_path).write_text(json.dumps(outcome), encoding="utf-8")
    store.close()
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.exit(main(sys.argv[1]))
