"""Slurm for `sweep submit`: the job array's batch script, `sbatch`, and the array's
tasks as `squeue` and `scontrol` see them (no `slurmdbd`: a small cluster has none).

The script runs one `sweep worker` per array task. It is requeueable (`--requeue`) and
asks for USR1 120 s before its time limit (`--signal=B:USR1@120`, to the batch shell
only). The batch shell then asks its worker to stop after the epoch in flight (the
worker puts its run back), and once the worker is gone requeues its own task, which
continues the run when Slurm starts it again. On SIGTERM (`scontrol requeue`, a
pre-emption, `scancel`) Slurm signals every process of the task: the worker stops
alike, and Slurm requeues the task or not (pre-emption: the cluster's `PreemptMode`).
Not submitit: it installs its own SIGTERM handler in the job, which would bypass the
worker's.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sweeps.errors import InputError

#: Seconds before its time limit that a task is warned (USR1) to stop and requeue.
WARN_SECONDS = 120
#: The shortest `--time` that leaves a task time to train after the warning.
MIN_TIME_SECONDS = 3 * 60
#: Task states after which Slurm starts the task no more (a requeued task is PENDING).
ENDED_STATES = frozenset({
    "BOOT_FAIL", "CANCELLED", "COMPLETED", "DEADLINE", "FAILED", "NODE_FAIL",
    "OUT_OF_MEMORY", "PREEMPTED", "REVOKED", "SPECIAL_EXIT", "TIMEOUT",
})
#: sbatch options `sweep submit` sets itself, refused in `--sbatch`.
_OWN_OPTIONS = {
    "--array": "--workers", "-a": "--workers", "--requeue": None, "--no-requeue": None,
    "--signal": None, "--output": None, "-o": None, "--wrap": None,
}
_TIME = re.compile(r"^(?:(\d+)-(\d+)(?::(\d+)(?::(\d+))?)?|(\d+)(?::(\d+)(?::(\d+))?)?)$")
_MEMORY = re.compile(r"^\d+[KMGT]?$", re.IGNORECASE)
_PARTITION = re.compile(r"^[A-Za-z0-9_.-]+(,[A-Za-z0-9_.-]+)*$")


def current_task(environ: Mapping[str, str] | None = None) -> str | None:
    """The Slurm job this process runs in, as `squeue` names it: `ARRAY_TASK` (e.g.
    `4242_3`) in a job array, else the job id; None outside Slurm."""
    environ = os.environ if environ is None else environ
    array, task = environ.get("SLURM_ARRAY_JOB_ID"), environ.get("SLURM_ARRAY_TASK_ID")
    if array and task:
        return f"{array}_{task}"
    return environ.get("SLURM_JOB_ID") or None


def time_seconds(text: str) -> int:
    """Seconds of a Slurm time limit (`MM`, `MM:SS`, `HH:MM:SS`, `D-HH`, `D-HH:MM`,
    `D-HH:MM:SS`).

    Raises:
        InputError: another form, or too short to work before the warning.
    """
    found = _TIME.match(text.strip())
    if not found:
        raise InputError(
            f"--time: {text!r} is not a Slurm time limit: MINUTES, HH:MM:SS or DAYS-HH[:MM[:SS]], e.g. 24:00:00"
        )
    days, hours, d_minutes, d_seconds, first, second, third = (int(g) if g else 0 for g in found.groups())
    if found.group(1) is not None:
        seconds = ((days * 24 + hours) * 60 + d_minutes) * 60 + d_seconds
    elif found.group(7) is not None:  # HH:MM:SS
        seconds = (first * 60 + second) * 60 + third
    else:  # MM or MM:SS
        seconds = first * 60 + second
    if seconds < MIN_TIME_SECONDS:
        raise InputError(
            f"--time: {text!r} is under {MIN_TIME_SECONDS // 60} minutes: each task is told to stop "
            f"{WARN_SECONDS} s before its limit, so it would hardly train"
        )
    return seconds


@dataclass
class JobArray:
    """What `sweep submit` asks of Slurm: N tasks, each one `sweep worker`.

    Args:
        study: the study's name.
        storage: the database URL the workers use.
        checkpoints: the checkpoint folder every node mounts at this path.
        workers: array tasks.
        python: the interpreter that runs `-m sweep_runner worker` on the nodes.
        workdir: the tasks' working folder (relative paths resolve from it).
        partition, time, gpus_per_worker, cpus_per_worker, mem: Slurm resources per
            task (None: the cluster's default).
        extra: more sbatch options, one per `--sbatch`.
        data_dir: the workers' `--data-dir`.
        start_ahead: False adds `--no-start-ahead`.
    """

    study: str
    storage: str
    checkpoints: Path
    workers: int
    python: str
    workdir: Path
    partition: str | None = None
    time: str | None = None
    gpus_per_worker: int | None = None
    cpus_per_worker: int | None = None
    mem: str | None = None
    extra: list[str] = field(default_factory=list)
    data_dir: Path | None = None
    start_ahead: bool = True

    @property
    def log_dir(self) -> Path:
        """Where the tasks' Slurm output and the workers' logs go."""
        return self.checkpoints / self.study

    def check(self) -> None:
        """Refuses resources Slurm would refuse or misread, before anything is written.

        Raises:
            InputError: naming the flag, the value and what is allowed.
        """
        if self.partition is not None and not _PARTITION.match(self.partition):
            raise InputError(f"--partition: {self.partition!r} is not a partition name (letters, digits, _ . -)")
        if self.time is not None:
            time_seconds(self.time)
        if self.mem is not None and not _MEMORY.match(self.mem):
            raise InputError(f"--mem: {self.mem!r} is not a Slurm memory size: a number with K, M, G or T, e.g. 32G")
        for option in self.extra:
            check_sbatch_option(option)

    def directives(self) -> list[str]:
        """The `#SBATCH` lines."""
        options = [
            f"--job-name=sweep-{self.study}",
            f"--array=0-{self.workers - 1}",
            "--requeue",
            f"--signal=B:USR1@{WARN_SECONDS}",
            "--open-mode=append",  # a requeued task adds to its output, not replaces it
            f"--output={self.log_dir / 'slurm-%A_%a.out'}",
            f"--chdir={self.workdir}",
            "--ntasks=1",
        ]
        if self.partition:
            options.append(f"--partition={self.partition}")
        if self.time:
            options.append(f"--time={self.time}")
        if self.gpus_per_worker:
            options.append(f"--gres=gpu:{self.gpus_per_worker}")
        if self.cpus_per_worker:
            options.append(f"--cpus-per-task={self.cpus_per_worker}")
        if self.mem:
            options.append(f"--mem={self.mem}")
        options += self.extra
        return [f"#SBATCH {option}" for option in options]

    def worker_command(self) -> list[str]:
        """The command each task runs: one worker on the study."""
        command = [
            self.python, "-m", "sweep_runner", "worker", self.study,
            "--storage", self.storage, "--checkpoints", str(self.checkpoints), "--log-format", "plain",
        ]
        if self.data_dir is not None:
            command += ["--data-dir", str(self.data_dir)]
        if not self.start_ahead:
            command.append("--no-start-ahead")
        return command

    def script(self) -> str:
        """The batch script."""
        command = shlex.join(self.worker_command())
        lines = [
            "#!/bin/bash",
            f"# Workers of study {self.study}, written by `sweep submit`: one `sweep worker` per",
            "# array task. Submit it again with `sbatch` to add workers.",
            *self.directives(),
            "",
            "# 120 s before the time limit Slurm sends USR1 to this shell: the worker is asked",
            "# to stop after the epoch in flight (it puts its run back), then this task requeues",
            "# itself and, started again, continues the run. SIGTERM (scontrol requeue, a",
            "# pre-emption, scancel) reaches the worker from Slurm itself: it stops alike, and",
            "# Slurm decides whether the task comes back. A task with nothing to do exits 0.",
            "worker=",
            "stop_worker() {",
            '  [ -n "$worker" ] && kill -TERM "$worker" 2>/dev/null',
            "  # `wait` returns early when a trapped signal arrives: wait until the worker is gone.",
            '  while [ -n "$worker" ] && kill -0 "$worker" 2>/dev/null; do wait "$worker"; done',
            "}",
            "requeue_self() {",
            '  echo "sweep submit: time limit near: the worker stops after its epoch; requeueing" >&2',
            "  stop_worker",
            '  scontrol requeue "${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}"',
            "  exit 0",
            "}",
            "trap requeue_self USR1",
            "trap 'stop_worker; exit 143' TERM",
            "",
            f"{command} &",
            "worker=$!",
            'wait "$worker"',
            "status=$?",
            "worker=",
            'exit "$status"',
            "",
        ]
        return "\n".join(lines)


def check_sbatch_option(option: str) -> None:
    """One `--sbatch` value: an sbatch option on one line, not one `sweep submit` sets.

    Raises:
        InputError: naming the option and what is allowed.
    """
    if not option.startswith("-") or "\n" in option or "\r" in option:
        raise InputError(
            f"--sbatch: {option!r} is not an sbatch option: give one option per --sbatch, "
            "with its value after '=', e.g. --sbatch=--account=myproject"
        )
    name = option.split("=", 1)[0]
    if name in _OWN_OPTIONS:
        instead = _OWN_OPTIONS[name]
        use = f"; use {instead}" if instead else ""
        raise InputError(f"--sbatch: {name} is set by sweep submit itself{use}")


def find_sbatch() -> str:
    """The `sbatch` on PATH.

    Raises:
        InputError: there is none (not a Slurm login node).
    """
    found = shutil.which("sbatch")
    if found is None:
        raise InputError(
            "sbatch: not found on PATH: `sweep submit` runs on a Slurm login node "
            "(see the job script with --dry-run)"
        )
    return found


def submit(script: Path, sbatch: str) -> str:
    """Submits the batch script; the job array's id.

    Raises:
        RuntimeError: sbatch refused it (its message).
    """
    done = subprocess.run([sbatch, "--parsable", str(script)], capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        message = (done.stderr or done.stdout).strip().splitlines()
        raise RuntimeError(f"sbatch refused {script}: {message[-1] if message else f'exit status {done.returncode}'}")
    return done.stdout.strip().split(";")[0]


@dataclass
class Task:
    """One array task as `squeue` shows it.

    Args:
        id: `ARRAY_TASK` (a pending remainder may read `ARRAY_[1-7]`).
        state: Slurm's state (`PENDING`, `RUNNING`, `COMPLETED`, …).
        reason: why it pends or ended (`None` when there is nothing to say).
    """

    id: str
    state: str
    reason: str

    @property
    def ended(self) -> bool:
        return self.state in ENDED_STATES


def array_tasks(job: str) -> list[Task] | None:
    """The array's tasks, every state (those Slurm still remembers: `MinJobAge`).

    Returns:
        The tasks; [] when Slurm no longer knows the array; None when `squeue` failed
        (slurmctld busy or unreachable: ask again later).
    """
    try:
        done = subprocess.run(
            ["squeue", "--noheader", "--array", "--states=all", f"--jobs={job}", "--format=%i|%T|%r"],
            capture_output=True, text=True, timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return [] if "Invalid job id" in done.stderr else None
    tasks = []
    for line in done.stdout.splitlines():
        parts = line.strip().split("|")
        if len(parts) == 3:
            tasks.append(Task(*parts))
    return tasks


def exit_codes(job: str) -> dict[str, str]:
    """Each ended task's `ExitCode` (`status:signal`) as `scontrol` reports it; {} when
    Slurm no longer knows the array."""
    try:
        done = subprocess.run(
            ["scontrol", "--oneliner", "show", "job", job], capture_output=True, text=True, timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired):
        return {}
    codes = {}
    for line in done.stdout.splitlines():
        fields = dict(item.split("=", 1) for item in line.split() if "=" in item)
        if "ArrayJobId" in fields and "ArrayTaskId" in fields and "ExitCode" in fields:
            codes[f"{fields['ArrayJobId']}_{fields['ArrayTaskId']}"] = fields["ExitCode"]
    return codes


def describe_end(job: str, tasks: Sequence[Task]) -> str:
    """Why the array is over, in one line: each task's state, reason and exit code."""
    if not tasks:
        return f"job array {job} is no longer in Slurm's queue"
    codes = exit_codes(job)
    shown = []
    for task in tasks:
        extra = [task.reason] if task.reason and task.reason != "None" else []
        if task.id in codes:
            extra.append(f"exit {codes[task.id]}")
        shown.append(f"task {task.id} {task.state}" + (f" ({', '.join(extra)})" if extra else ""))
    return f"job array {job} ended: " + "; ".join(shown)
