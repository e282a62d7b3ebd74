"""Stopping a sweep: Ctrl-C (once: after the epoch; twice: at once) and a scheduler's
SIGTERM pre-emption, each with the exit status 130 and a run that resumes."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import psutil
import pytest

from results.store import ResultStore
from sweeping import kill, run, start, wait_for, write_sweep


def _run(url: str, study: str) -> dict:
    with ResultStore(url) as store:
        (only,) = store.runs(study)
        return {**only, "epochs": [e["epoch"] for e in store.epochs(only["id"])],
                "trainings": [e["trainings"] for e in store.epochs(only["id"])]}


@pytest.mark.timeout(400)
@pytest.mark.parametrize("how", ["ctrl_c", "sigterm"])
def test_a_first_stop_ends_the_run_after_its_epoch_and_it_resumes(tmp_path: Path, how: str) -> None:
    """Ctrl-C reaches the terminal's whole process group; a scheduler's pre-emption
    (Kubernetes, a spot VM) sends SIGTERM to the command alone, which passes it on."""
    sweep = write_sweep(tmp_path, how, epochs=3, space="weight_decay = [0.1]")
    url = f"sqlite:///{tmp_path / 'sweeps.db'}"
    process = start(["run", str(sweep), "--storage", url], tmp_path)
    wait_for(process, lambda e: e["event"] == "epoch" and e["epoch"] == 1)
    if how == "ctrl_c":
        os.killpg(process.pid, signal.SIGINT)
    else:
        os.kill(process.pid, signal.SIGTERM)
    try:
        assert process.wait(timeout=120) == 130
    finally:
        kill(process)
    stopped = _run(url, how)
    assert stopped["state"] == "stopped"  # put back, claimable again
    assert 1 <= len(stopped["epochs"]) < 3
    if how == "sigterm":
        return  # the same stopped run as Ctrl-C's, whose resume follows

    resumed = run(["resume", how, "--storage", url], tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    finished = _run(url, how)
    assert finished["state"] == "complete" and finished["attempts"] == 2
    assert finished["epochs"] == [1, 2, 3]
    assert finished["trainings"] == [1, 1, 1]  # stopped at an epoch's end: nothing twice


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
