"""A front process (`sweep run`) killed with SIGKILL takes its workers and their
children with it; the run in flight is put back, its epochs kept."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import psutil
import pytest

from results.store import ResultStore
from sweeping import start, wait_for, write_sweep


@pytest.mark.timeout(300)
def test_workers_stop_when_the_front_process_is_killed(tmp_path: Path) -> None:
    sweep = write_sweep(tmp_path, "orphans", epochs=8, space="weight_decay = [0.05]")
    url = f"sqlite:///{tmp_path / 'sweeps.db'}"
    front = start(["run", str(sweep), "--storage", url], tmp_path)
    wait_for(front, lambda e: e["event"] == "epoch" and e["epoch"] == 1)
    below = psutil.Process(front.pid).children(recursive=True)
    assert len(below) >= 2  # a worker and its child

    os.kill(front.pid, signal.SIGKILL)  # the front alone, as the OOM killer would
    front.wait()

    gone, alive = psutil.wait_procs(below, timeout=60)
    assert not alive, [p.cmdline() for p in alive]
    with ResultStore(url) as store:
        (run,) = store.runs("orphans")
        epochs = store.epochs(run["id"])
    # Stopped after its epoch, put back for resume: not left "running", nothing lost.
    assert run["state"] == "stopped", run
    assert [e["epoch"] for e in epochs] == list(range(1, len(epochs) + 1)) and len(epochs) < 8
