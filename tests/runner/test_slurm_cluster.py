"""`sweep submit` on a real one-node Slurm cluster (tests/slurm.py): the job array
trains the study, and a task requeued mid-run continues its run (`make test-long`)."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from results.store.models import RunState
from results.store.result_store import ResultStore
from testkit.slurm import missing_reason, slurm_cluster
from testkit.sweeping import SWEEP, env, write_sweep

EPOCHS = 6
#: Seconds past a task's kill before its requeued launch may be issued a credential.
CREDENTIAL_SECONDS = 2


# One cluster for the module's tests, one test at a time (an xdist group): two
# clusters on one machine would share its cores and its hostname.
pytestmark = pytest.mark.xdist_group("slurm-cluster")


@pytest.fixture(scope="module")
def cluster():
    reason = missing_reason()
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must run the Slurm tests: {reason}")
        pytest.skip(reason)
    with slurm_cluster() as running:
        yield running


def _epochs_stored(url: str, study: str) -> dict[str, list[dict]]:
    with ResultStore(url, create=False) as store:
        return {run["label"]: store.epochs(run["id"]) for run in store.runs(study)}


def _running(url: str, study: str) -> list[dict]:
    if not Path(url.removeprefix("sqlite:///")).exists():
        return []  # `sweep submit` has not made the study yet
    with ResultStore(url, create=False) as store:
        return [run for run in store.runs(study) if run["state"] == RunState.RUNNING]


def _status(url: str, study: str) -> str:
    """`sweep status STUDY` as a terminal 200 wide shows it."""
    import io

    from rich.console import Console

    from results.report.status import study_status

    out = io.StringIO()
    with ResultStore(url, create=False) as store:
        Console(file=out, width=200).print(study_status(store, study, threshold=0.92))
    return out.getvalue()


def _start_when_pending(cluster, task: str) -> None:
    """Slurm holds a requeued batch job back for two minutes (its BeginTime): the test
    moves that to now once the task is pending again, to save the wait.

    Not at once: killing the task revoked its job credential, and slurmd refuses a
    credential issued in the same second as the revocation (whole seconds: "Job 2
    already killed, do not launch batch job", and the task fails). Slurm's own hold is
    there for that; two seconds are enough to be past it.
    """
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        state = cluster.run("squeue", "--noheader", "--states=all", f"--jobs={task}", "--format=%T", check=False)
        if state.stdout.strip() == "PENDING":
            time.sleep(CREDENTIAL_SECONDS)
            cluster.run("scontrol", "update", f"JobId={task}", "StartTime=now", check=False)
            return
        time.sleep(0.5)


# How a task is interrupted: Slurm requeues it (SIGTERM to every process: `scontrol
# requeue`, a pre-emption), or it nears its time limit (USR1 to the batch shell alone,
# `--signal=B:USR1@120`, and the script requeues its own task).
INTERRUPTIONS = {
    "scontrol requeue": lambda task: ("scontrol", "requeue", task),
    "time limit near": lambda task: ("scancel", "--batch", "--signal=USR1", task),
}


@pytest.mark.long
@pytest.mark.timeout(600)
@pytest.mark.parametrize("interruption", list(INTERRUPTIONS))
def test_a_requeued_task_continues_its_run_and_the_study_completes(cluster, tmp_path: Path, interruption) -> None:
    sweep = write_sweep(tmp_path, "slurmed", epochs=EPOCHS, space="weight_decay = [0.05, 0.2]")
    url = f"sqlite:///{tmp_path / 'sweeps.db'}"
    submit = subprocess.Popen(
        [*SWEEP, "submit", str(sweep), "--workers", "1", "--wait", "--storage", url,
         "--checkpoints", str(tmp_path / "checkpoints"), "--log-format", "jsonl"],
        cwd=tmp_path, env={**env(), **cluster.env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        # Half-way through the first run, Slurm requeues the only task: its worker stops
        # after the epoch in flight and puts the run back; only the requeued task can
        # finish the study.
        deadline = time.monotonic() + 300
        running = []
        while time.monotonic() < deadline and submit.poll() is None:
            running = _running(url, "slurmed")
            if running and 2 <= len(_epochs_stored(url, "slurmed")[running[0]["label"]]) < EPOCHS - 2:
                break
            time.sleep(0.5)
        assert running and submit.poll() is None, f"no run got half-way\n{cluster.logs()}"
        task = running[0]["slurm_job"]
        assert task is not None and task.endswith("_0"), running[0]  # the attempt names its task
        assert task in _status(url, "slurmed")
        requeued = cluster.run(*INTERRUPTIONS[interruption](task), check=False)
        assert requeued.returncode == 0, requeued.stderr
        _start_when_pending(cluster, task)
        out, err = submit.communicate(timeout=420)
    finally:
        if submit.poll() is None:
            submit.kill()
    logs = "\n".join(path.read_text(errors="replace")[-3000:]
                     for path in (tmp_path / "checkpoints" / "slurmed").glob("*.out"))
    assert submit.returncode == 0, f"{err[-3000:]}\n{logs}\n{cluster.logs()}"

    with ResultStore(url, create=False) as store:
        runs = {run["label"]: run for run in store.runs("slurmed")}
    assert all(run["state"] == RunState.COMPLETE for run in runs.values()), runs
    epochs = _epochs_stored(url, "slurmed")
    assert all([row["epoch"] for row in rows] == list(range(1, EPOCHS + 1)) for rows in epochs.values())
    # The requeue cost at most the epoch in flight, and the run interrupted continued
    # (a second attempt) in the requeued task rather than from epoch 1.
    trained_twice = sum(row["trainings"] - 1 for rows in epochs.values() for row in rows)
    assert trained_twice <= 1, epochs
    interrupted = runs[running[0]["label"]]
    assert interrupted["attempts"] == 2 and interrupted["slurm_job"] == task, interrupted
    # The requeued task, left with nothing to do once the study is complete, ends well.
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        shown = cluster.run("scontrol", "--oneliner", "show", "job", task).stdout
        if "JobState=COMPLETED" in shown or "JobState=FAILED" in shown:
            break
        time.sleep(1)
    assert "Restarts=1" in shown and "JobState=COMPLETED" in shown and "ExitCode=0:0" in shown, shown


@pytest.mark.long
@pytest.mark.timeout(600)
def test_wait_ends_with_slurms_reason_when_the_array_is_cancelled_with_runs_left(cluster, tmp_path: Path) -> None:
    sweep = write_sweep(tmp_path, "cancelled", epochs=EPOCHS, space="weight_decay = [0.05, 0.2]")
    url = f"sqlite:///{tmp_path / 'sweeps.db'}"
    submit = subprocess.Popen(
        [*SWEEP, "submit", str(sweep), "--workers", "1", "--wait", "--storage", url,
         "--checkpoints", str(tmp_path / "checkpoints"), "--log-format", "plain"],
        cwd=tmp_path, env={**env(), **cluster.env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and submit.poll() is None and not _running(url, "cancelled"):
            time.sleep(0.5)
        (run,) = _running(url, "cancelled")
        array = run["slurm_job"].split("_")[0]
        assert cluster.run("scancel", array, check=False).returncode == 0
        out, err = submit.communicate(timeout=300)
    finally:
        if submit.poll() is None:
            submit.kill()
    assert submit.returncode == 1, err
    # Why, from Slurm (the task's state), and which runs are left.
    assert f"job array {array} ended: task {array}_0 CANCELLED" in err, err
    assert "with 2 run(s) of study cancelled not done" in err and "run λ=0.20: waiting" in err, err
