"""Stopping a sweep: Ctrl-C (once: after the epoch; twice: at once), a scheduler's
SIGTERM pre-emption, the front process killed alone and kill -9 of everything; a
stopped run resumes, and only a kill can cost it the epoch in flight."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import psutil
import pytest

from results.store.result_store import ResultStore
from testkit.sweeping import kill, run, start, wait_for, write_sweep


def _run(url: str, study: str) -> dict:
    with ResultStore(url) as store:
        (only,) = store.runs(study)
        return {**only, "epochs": [e["epoch"] for e in store.epochs(only["id"])],
                "trainings": [e["trainings"] for e in store.epochs(only["id"])]}


def _stop(process, how: str) -> None:
    """One way a sweep is stopped, and what the command then does."""
    if how == "ctrl_c":  # the terminal sends it to the whole process group
        os.killpg(process.pid, signal.SIGINT)
    elif how == "sigterm":  # a scheduler's pre-emption (Kubernetes, a spot VM): the command alone
        os.kill(process.pid, signal.SIGTERM)
    else:  # the OOM killer takes the front process alone: its workers follow it
        below = psutil.Process(process.pid).children(recursive=True)
        assert len(below) >= 2  # a worker and its child
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
        _gone, alive = psutil.wait_procs(below, timeout=60)
        assert alive == [], [p.cmdline() for p in alive]
        return
    try:
        assert process.wait(timeout=120) == 130
    finally:
        kill(process)


@pytest.mark.long
@pytest.mark.timeout(600)
def test_a_run_stopped_every_way_resumes_and_loses_only_the_epoch_in_flight_at_a_kill(tmp_path: Path) -> None:
    """One run, stopped four times and continued each time: Ctrl-C, SIGTERM, the front
    process killed alone, then kill -9 of everything. The first three stop after the
    epoch in flight and put the run back ("stopped"); the kill leaves it "running" for
    the next invocation, which continues it from its checkpoint whatever max_retries."""
    epochs = 12  # each stop takes an epoch or two (three on a fast machine): room for four
    sweep = write_sweep(tmp_path, "stops", epochs=epochs, space="weight_decay = [0.1]",
                        extra="[study]\nmax_retries = 0")
    url = f"sqlite:///{tmp_path / 'sweeps.db'}"
    done = 0
    for command, how in (("run", "ctrl_c"), ("resume", "sigterm"), ("resume", "front_killed")):
        target = str(sweep) if command == "run" else "stops"
        process = start([command, target, "--storage", url], tmp_path)
        wait_for(process, lambda e: e["event"] == "epoch" and e["epoch"] > done)
        _stop(process, how)
        stopped = _run(url, "stops")
        assert stopped["state"] == "stopped", (how, stopped)  # put back, claimable again
        assert done < len(stopped["epochs"]) < epochs, how
        assert stopped["trainings"] == [1] * len(stopped["epochs"]), how  # stopped at an epoch's end
        done = len(stopped["epochs"])

    process = start(["run", str(sweep), "--storage", url], tmp_path)
    wait_for(process, lambda e: e["event"] == "epoch" and e["epoch"] > done)
    kill(process)
    left = _run(url, "stops")
    assert left["state"] == "running"  # left behind by a dead worker
    stored = len(left["epochs"])

    again = run(["run", str(sweep), "--storage", url], tmp_path)
    assert again.returncode == 0, again.stderr
    finished = _run(url, "stops")
    assert finished["state"] == "complete"
    assert finished["attempts"] == 5  # more than max_retries + 1: interruptions are not failures
    assert finished["epochs"] == list(range(1, epochs + 1))
    # Only the kill can cost an epoch: the last one stored before it, if its row came
    # just before its checkpoint (the epoch in flight).
    retrained = [e for e, n in zip(finished["epochs"], finished["trainings"], strict=True) if n > 1]
    assert retrained in ([], [stored]), (retrained, stored)
    assert "val_acc_best" in again.stdout  # the summary table closes the sweep


@pytest.mark.long
@pytest.mark.timeout(300)
def test_a_second_ctrl_c_stops_at_once(tmp_path: Path) -> None:
    # 3000 synthetic 32×32 images: epochs of about 4 s on 2 cores, so that the second
    # press lands inside epoch 2 (1400 digits at 16×16 took under a second: flaky).
    space = 'weight_decay = [0.1]\ndataset = ["synthetic"]\nimage_shape = [[32, 32, 3]]'
    sweep = write_sweep(tmp_path, "twice", epochs=5, space=space, train_size=3000)
    url = f"sqlite:///{tmp_path / 'sweeps.db'}"
    process = start(["run", str(sweep), "--storage", url], tmp_path)
    event = wait_for(process, lambda e: e["event"] == "epoch" and e["epoch"] == 1)
    # The epoch's row is stored before its checkpoint, and a press before the checkpoint
    # would stop the run after epoch 1: press once epoch 2 is under way.
    checkpoint = tmp_path / "checkpoints" / "twice" / event["run_key"] / "checkpoint.npz"
    deadline = time.monotonic() + 60
    while not checkpoint.exists():
        assert time.monotonic() < deadline, "no checkpoint after epoch 1"
        time.sleep(0.05)
    time.sleep(0.3)
    tree = psutil.Process(process.pid).children(recursive=True)
    assert any("sweep_runner.child" in p.cmdline() for p in tree)
    os.killpg(process.pid, signal.SIGINT)
    time.sleep(0.7)  # past the debounce: a second press, not the same one seen twice
    os.killpg(process.pid, signal.SIGINT)
    try:
        assert process.wait(timeout=30) == 130
    finally:
        kill(process)
    _gone, alive = psutil.wait_procs(tree, timeout=10)
    assert alive == []  # no worker or child trains on
    interrupted = _run(url, "twice")
    # Epoch 2 was cut short: after one press it would have ended, "stopped", at epoch 2.
    assert interrupted["epochs"] == [1]
    assert interrupted["state"] == "running"  # its worker is gone: the next run takes it over
