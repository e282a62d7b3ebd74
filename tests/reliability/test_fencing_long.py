"""A worker paused past the grace period while its child trains on: another worker takes
the run over, and when the paused one wakes, nothing of the old attempt lands after the
takeover: no epoch row, no outcome, no checkpoint made current.

`make test-long` (a few minutes: two workers, two TensorFlow children).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from results.store.result_store import ResultStore
from testkit.tiny_sweeps import write_sweep

FAST = {"SWEEP_GRACE_PERIOD": "4", "SWEEP_HEARTBEAT_INTERVAL": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}


def _worker(study: str, url: str, checkpoints: Path, log: Path) -> subprocess.Popen:
    with open(log, "ab") as stream:
        return subprocess.Popen(
            [sys.executable, "-m", "sweep_runner.worker", study, "--storage", url,
             "--checkpoints", str(checkpoints), "--no-start-ahead", "--log-format", "plain"],
            env={**os.environ, **FAST}, stdout=stream, stderr=subprocess.STDOUT,
        )


def _until(condition, timeout: float, what: str):  # noqa: ANN001, ANN202
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.2)
    raise AssertionError(f"not within {timeout:.0f} s: {what}")


def _ended(process: psutil.Process) -> bool:
    try:
        return process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.mark.long
@pytest.mark.timeout(2400)
def test_a_paused_worker_writes_nothing_after_its_run_was_taken_over(tmp_path: Path) -> None:
    sweep = write_sweep(tmp_path, "paused", epochs=12, space="weight_decay = [0.1]", train_size=256)
    url = f"sqlite:///{tmp_path / 'sweeps.db'}"
    checkpoints = tmp_path / "checkpoints"  # the default beside a SQLite database
    created = subprocess.run(
        [sys.executable, "-m", "sweep_runner", "run", str(sweep), "--storage", url, "--max-trials", "0"],
        env={**os.environ, **FAST}, capture_output=True, text=True, timeout=600,
    )
    assert created.returncode == 0, created.stderr
    store = ResultStore(url)
    (run,) = store.runs("paused")
    paused = _worker("paused", url, checkpoints, tmp_path / "paused.log")
    taker = None
    try:
        _until(lambda: len(store.epochs(run["id"])) >= 2, 900, "two epochs by the first worker")
        (child,) = [p for p in psutil.Process(paused.pid).children() if "sweep_runner.child" in " ".join(p.cmdline())]
        paused.send_signal(signal.SIGSTOP)  # the worker stops beating; its child trains on
        taker = _worker("paused", url, checkpoints, tmp_path / "taker.log")
        _until(lambda: store.get_run(run["id"])["attempts"] == 2, 600, "the takeover")
        # Everything the old attempt wrote before the takeover committed.
        written = store.epoch_attempts(run["id"])
        before = {e["epoch"]: e for e in store.epochs(run["id"]) if written.get(e["epoch"]) == 1}
        # The old child stops at its next write (a zombie until its paused parent reaps it).
        _until(lambda: _ended(child), 600, "the old child to stop")
        paused.send_signal(signal.SIGCONT)
        assert taker.wait(1200) == 0, (tmp_path / "taker.log").read_text()
        assert paused.wait(300) == 0, (tmp_path / "paused.log").read_text()
    finally:
        for process in (paused, taker):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGCONT)
                process.kill()
                process.wait()
    after = store.get_run(run["id"])
    epochs = store.epochs(run["id"])
    written = store.epoch_attempts(run["id"])
    store.close()
    assert (after["state"], after["attempts"]) == ("complete", 2)
    assert [e["epoch"] for e in epochs] == list(range(1, 13))
    # No epoch row of the old attempt after the takeover: each row left from attempt 1
    # is one it wrote before, unchanged; the old child got at least one epoch further.
    old = {e["epoch"]: e for e in epochs if written[e["epoch"]] == 1}
    assert old.keys() <= before.keys() and all(old[k] == before[k] for k in old)
    assert len(before) >= 2
    folder = checkpoints / "paused" / after["run_key"]
    # No outcome of the old attempt: its child wrote none, its worker recorded none.
    assert not (folder / "outcome-1.json").exists()
    log = (folder / "train.log").read_text()
    assert "attempt 1 no longer holds the run" in log
    # No checkpoint of the old attempt made current after the takeover: its last one is
    # of an epoch whose row it stored before the takeover.
    checkpointed = [int(k) for k in re.findall(r"attempt 1: checkpoint of epoch (\d+) written", log)]
    assert checkpointed and max(checkpointed) <= max(before)
    assert "attempt 2: outcome of epoch 12 written" in log
    worker_log = (tmp_path / "paused.log").read_text()
    assert "lost its claim" in worker_log
