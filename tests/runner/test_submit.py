"""`sweep submit` without a cluster: the job script it writes, its one-line refusals, and
the Slurm task each attempt records. (On a real cluster: test_slurm_cluster.py.)"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from sweep_runner.slurm import Task, current_task, describe_end
from testkit.sweeping import write_sweep


def _sweep(args: list[str], cwd: Path, path: str | None = None) -> subprocess.CompletedProcess:
    """`sweep ARGS` in this process (no imports to wait for), in `cwd`, with PATH
    replaced by `path` if given; as a CompletedProcess."""
    import contextlib
    import io

    from sweep_runner.cli import main

    out, err = io.StringIO(), io.StringIO()
    saved = {key: os.environ.get(key) for key in ("PATH", "SWEEP_STORAGE")}
    before = Path.cwd()
    os.environ.pop("SWEEP_STORAGE", None)
    if path is not None:
        os.environ["PATH"] = path
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(args)
            except SystemExit as exit_:  # argparse's own errors
                code = int(exit_.code or 0)
    finally:
        os.chdir(before)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


@pytest.mark.timeout(120)
def test_dry_run_prints_a_requeueable_job_array_of_workers(tmp_path: Path) -> None:
    sweep = write_sweep(tmp_path, "grid", epochs=2, space="weight_decay = [0.05, 0.1, 0.2]")
    url = f"sqlite:///{tmp_path / 'sweeps.db'}"
    done = _sweep(["submit", str(sweep), "--workers", "3", "--storage", url, "--dry-run",
                   "--partition", "gpu", "--time", "1-00:00:00", "--gpus-per-worker", "1",
                   "--cpus-per-worker", "8", "--mem", "32G", "--sbatch=--account=lab",
                   "--sbatch=--qos=long", "--checkpoints", str(tmp_path / "shared")],
                  tmp_path, path="/nonexistent")  # no Slurm here: --dry-run needs none
    assert done.returncode == 0, done.stderr
    script = done.stdout
    directives = [line.removeprefix("#SBATCH ") for line in script.splitlines() if line.startswith("#SBATCH")]
    assert directives == [
        "--job-name=sweep-grid", "--array=0-2", "--requeue", "--signal=B:USR1@120", "--open-mode=append",
        f"--output={tmp_path / 'shared' / 'grid' / 'slurm-%A_%a.out'}", f"--chdir={tmp_path}", "--ntasks=1",
        "--partition=gpu", "--time=1-00:00:00", "--gres=gpu:1", "--cpus-per-task=8", "--mem=32G",
        "--account=lab", "--qos=long",
    ]
    # One worker per task, on this study, with the storage and the shared folder given.
    (command,) = [line for line in script.splitlines() if line.endswith(" &")]
    assert shlex.split(command[:-2]) == [
        sys.executable, "-m", "sweep_runner", "worker", "grid", "--storage", url,
        "--checkpoints", str(tmp_path / "shared"), "--log-format", "plain",
    ]
    # USR1 (near the time limit) stops the worker, then requeues this very task.
    assert "trap requeue_self USR1" in script and "trap 'stop_worker; exit 143' TERM" in script
    assert 'scontrol requeue "${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}"' in script
    assert subprocess.run(["bash", "-n"], input=script, text=True).returncode == 0  # valid bash
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grid.toml"]  # nothing written


@pytest.mark.timeout(120)
def test_dry_run_script_stops_the_worker_and_requeues_itself_on_usr1(tmp_path: Path) -> None:
    """The script's own trap, run by bash with stand-ins for python and scontrol."""
    sweep = write_sweep(tmp_path, "grid", epochs=2)
    done = _sweep(["submit", str(sweep), "--workers", "1", "--storage", f"sqlite:///{tmp_path / 's.db'}",
                   "--dry-run"], tmp_path)
    assert done.returncode == 0, done.stderr
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    # The worker: says when it is asked to stop, then takes a moment (its last epoch).
    worker = bin_dir / "worker"
    worker.write_text("#!/bin/bash\ntrap 'echo stopping >> log; sleep 1; echo stopped >> log; exit 130' TERM\n"
                      "echo started >> log\nwhile :; do sleep 0.1; done\n")
    (bin_dir / "scontrol").write_text('#!/bin/bash\necho "scontrol $*" >> log\n')
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    script = done.stdout.replace(shlex.join([sys.executable]), str(worker), 1)
    (tmp_path / "job.sh").write_text(script)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "SLURM_ARRAY_JOB_ID": "77",
           "SLURM_ARRAY_TASK_ID": "3"}
    job = subprocess.Popen(["bash", "job.sh"], cwd=tmp_path, env=env)
    log = tmp_path / "log"
    for _ in range(100):
        if log.exists():
            break
        subprocess.run(["sleep", "0.1"])
    job.send_signal(__import__("signal").SIGUSR1)
    assert job.wait(timeout=30) == 0
    assert log.read_text().splitlines() == ["started", "stopping", "stopped", "scontrol requeue 77_3"]


@pytest.mark.timeout(120)
def test_a_missing_sbatch_is_one_line_and_nothing_is_written(tmp_path: Path) -> None:
    sweep = write_sweep(tmp_path, "grid", epochs=2)
    url = f"sqlite:///{tmp_path / 'sweeps.db'}"
    done = _sweep(["submit", str(sweep), "--workers", "2", "--storage", url], tmp_path, path="/nonexistent")
    assert done.returncode == 2
    assert done.stderr.startswith("sbatch: not found on PATH") and done.stderr.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grid.toml"]  # no study, no script


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--workers", "0"], "argument --workers: must be a positive integer, got '0'"),
        (["--workers", "3"], "--workers: 3 workers for 2 runs of study 'grid': at most 2"),
        (["--workers", "1", "--time", "soon"], "--time: 'soon' is not a Slurm time limit"),
        (["--workers", "1", "--time", "2"], "--time: '2' is under 3 minutes"),
        (["--workers", "1", "--mem", "lots"], "--mem: 'lots' is not a Slurm memory size"),
        (["--workers", "1", "--partition", "a b"], "--partition: 'a b' is not a partition name"),
        (["--workers", "1", "--gpus-per-worker", "-1"], "argument --gpus-per-worker: must be a whole number"),
        (["--workers", "1", "--sbatch=account"], "--sbatch: 'account' is not an sbatch option"),
        (["--workers", "1", "--sbatch=--array=0-99"], "--sbatch: --array is set by sweep submit itself; use --workers"),
        (["--workers", "1", "--storage", "mysql://x/y"], "--storage"),
    ],
)
def test_bad_flags_are_one_line_exit_2_and_nothing_is_submitted(tmp_path: Path, flags, message) -> None:
    sweep = write_sweep(tmp_path, "grid", epochs=2)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "sbatch").write_text(f"#!/bin/sh\ntouch {tmp_path}/submitted\necho 1\n")
    (bin_dir / "sbatch").chmod(0o755)
    storage = [] if "--storage" in flags else ["--storage", f"sqlite:///{tmp_path / 'sweeps.db'}"]
    done = _sweep(["submit", str(sweep), *storage, *flags], tmp_path, path=f"{bin_dir}:/usr/bin:/bin")
    assert done.returncode == 2, done.stderr
    assert message in done.stderr and done.stderr.count("\n") == 1, done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bin", "grid.toml"]


@pytest.mark.timeout(60)
def test_the_slurm_task_of_a_worker_and_why_an_array_ended() -> None:
    assert current_task({"SLURM_ARRAY_JOB_ID": "40", "SLURM_ARRAY_TASK_ID": "2", "SLURM_JOB_ID": "43"}) == "40_2"
    assert current_task({"SLURM_JOB_ID": "43"}) == "43"
    assert current_task({}) is None
    tasks = [Task("40_0", "CANCELLED", "None"), Task("40_1", "COMPLETED", "None")]
    assert describe_end("40", tasks).startswith("job array 40 ended: task 40_0 CANCELLED; task 40_1 COMPLETED")
    assert describe_end("40", []) == "job array 40 is no longer in Slurm's queue"


@pytest.mark.timeout(60)
def test_status_shows_the_slurm_task_that_trains_each_run(tmp_path: Path) -> None:
    import io
    import socket

    from rich.console import Console

    from results.report.status import study_status
    from results.store.result_store import ResultStore

    store = ResultStore(f"sqlite:///{tmp_path / 'sweeps.db'}")
    config = {"epochs": 3, "learning_rate": 1e-3, "weight_decay": 0.1}
    slurmed, local = (store.register_run("s", f"k{i}", label=f"run{i}", comment=None, config=config)
                      for i in range(2))
    me = f"{socket.gethostname()}/1/x"  # pid 1 lives: the runs are not interrupted
    for run_id in (slurmed, local):
        store.claim_run(run_id, worker=me, host="h", stale_after=20, max_attempts=3)
    # What a worker's claim records (the Slurm test sees a real one do it).
    task = current_task({"SLURM_ARRAY_JOB_ID": "4242", "SLURM_ARRAY_TASK_ID": "3"})
    assert store.set_slurm_job(slurmed, me, task) and store.set_slurm_job(local, me, current_task({}))
    assert not store.set_slurm_job(local, "another worker", "1_1")  # only the run's own worker

    out = io.StringIO()
    Console(file=out, width=200).print(study_status(store, "s", threshold=0.92))
    lines = out.getvalue().splitlines()
    assert "slurm job" in next(line for line in lines if "worker@host" in line)
    assert "4242_3" in next(line for line in lines if "run0" in line)
    assert "4242" not in next(line for line in lines if "run1" in line)
    store.close()


@pytest.mark.timeout(120)
def test_a_started_study_is_submitted_by_name_bounded_by_its_runs(tmp_path: Path) -> None:
    sweep = write_sweep(tmp_path, "grid", epochs=2)  # two runs
    url = f"sqlite:///{tmp_path / 'sweeps.db'}"
    assert _sweep(["run", str(sweep), "--storage", url, "--max-trials", "0"], tmp_path).returncode == 0

    done = _sweep(["submit", "grid", "--workers", "2", "--storage", url, "--dry-run"], tmp_path, path="/none")
    assert done.returncode == 0, done.stderr
    assert "#SBATCH --array=0-1" in done.stdout and " worker grid --storage " in done.stdout
    too_many = _sweep(["submit", "grid", "--workers", "3", "--storage", url, "--dry-run"], tmp_path)
    assert too_many.returncode == 2 and "at most 2" in too_many.stderr
    unknown = _sweep(["submit", "nosuch", "--workers", "1", "--storage", url, "--dry-run"], tmp_path)
    assert unknown.returncode == 2 and "unknown study 'nosuch' in" in unknown.stderr
