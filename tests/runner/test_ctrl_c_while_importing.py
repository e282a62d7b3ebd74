"""Ctrl-C while a trial's child is still importing stops the run, which continues
later: it neither fails nor spends a retry (it used to fail with "child process exited
with status 130", and three presses left it for `sweep retry`)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import psutil
import pytest

from results.store.result_store import ResultStore
from testkit.sweeping import kill, start, write_sweep


@pytest.mark.timeout(300)
def test_ctrl_c_while_the_child_imports_spends_no_retry(tmp_path: Path) -> None:
    sweep = write_sweep(tmp_path, "early", epochs=3, space="weight_decay = [0.1]", extra="[study]\nmax_retries = 0")
    url = f"sqlite:///{tmp_path / 'sweeps.db'}"
    process = start(["run", str(sweep), "--storage", url], tmp_path)
    try:
        deadline = time.monotonic() + 200
        while True:  # claimed, and its child started: it imports for seconds
            assert time.monotonic() < deadline and process.poll() is None, "no child started"
            tree = psutil.Process(process.pid).children(recursive=True)
            if any("sweep_runner.child" in " ".join(p.cmdline()) for p in tree):
                break
            time.sleep(0.05)
        os.killpg(process.pid, signal.SIGINT)
        assert process.wait(timeout=120) == 130
    finally:
        kill(process)
    with ResultStore(url) as store:
        (run,) = store.runs("early")
        epochs = store.epochs(run["id"])
    assert epochs == []  # pressed before its first epoch ended
    # Put back, claimable again whatever max_retries = 0: not failed.
    assert run["state"] == "stopped", run
    assert "status 130" not in (run["failure_reason"] or "")
